import type { Key } from '../datastore';

/** Keys streamed but not yet committed, in key order; dropping from the front is O(1) amortised. */
export class KeyQueue {
  private keys: Key[] = [];
  private head = 0;

  get length(): number {
    return this.keys.length - this.head;
  }

  push(keys: readonly Key[]): void {
    if (this.head > 0 && this.head >= this.keys.length / 2) {
      this.keys = this.keys.slice(this.head);
      this.head = 0;
    }
    for (const key of keys) this.keys.push(key);
  }

  peek(n: number): Key[] {
    return this.keys.slice(this.head, this.head + n);
  }

  drop(n: number): void {
    this.head = Math.min(this.keys.length, this.head + n);
  }
}
