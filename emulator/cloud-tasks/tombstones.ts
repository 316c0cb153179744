/**
 * Names of tasks that ran or were deleted, kept for the retention window so that a task name
 * cannot be reused within it (Cloud Tasks keeps them for about an hour). Retention is the same for
 * every entry, so insertion order is expiry order and pruning only ever looks at the oldest ones.
 */
export class Tombstones {
  private readonly expiry = new Map<string, number>();

  constructor(private readonly retentionMs: number) {}

  add(name: string, now: number): void {
    this.expiry.delete(name); // re-insert at the end to keep the map in expiry order
    this.expiry.set(name, now + this.retentionMs);
    this.prune(now);
  }

  has(name: string, now: number): boolean {
    this.prune(now);
    return this.expiry.has(name);
  }

  clear(): void {
    this.expiry.clear();
  }

  private prune(now: number): void {
    for (const [name, expiresAt] of this.expiry) {
      if (expiresAt > now) return;
      this.expiry.delete(name);
    }
  }
}
