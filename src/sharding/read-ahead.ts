import type { Datastore, PropertyFilter } from '../datastore';
import { cutFromStream, cutsFromStream, type CutPage, type SplitTarget, type StreamCut } from './splitter';

/** What a read-ahead needs of an operation: its scope. */
export interface ReadAheadWork {
  readonly kind: string;
  readonly filters: readonly PropertyFilter[];
  readonly scope: { readonly shardCount?: number };
  namespaces(store: Datastore): Promise<readonly string[]>;
}

interface FirstPage {
  namespace: string;
  stream: AsyncGenerator<CutPage>;
  first: IteratorResult<CutPage>;
}

/**
 * The first page of an operation's key stream, read before its job is laid out. A run takes a dozen
 * round trips (the lease, the run, the migration's record, the step) before its first job reads its
 * keys, and where shards are cut from the stream (a backend without `__scatter__`) that read is a scan of
 * the kind: started as soon as the plan is known, the two overlap. Only the job's first cut of that
 * namespace takes it (Job.cut), once; a read-ahead that is not taken is let go (`discard`), and one that
 * failed is read again by the cut as if there had been none.
 */
export class KeyReadAhead {
  private readonly read: Promise<FirstPage | undefined>;
  private taken = false;

  constructor(
    private readonly store: Datastore,
    private readonly work: ReadAheadWork,
    private readonly cut: StreamCut,
  ) {
    this.read = this.start();
    this.read.catch(() => undefined);
  }

  private async start(): Promise<FirstPage | undefined> {
    if (!(await cutsFromStream(this.store, this.work.scope.shardCount))) return undefined;
    const [namespace] = await this.work.namespaces(this.store);
    if (namespace === undefined) return undefined;
    const stream = cutFromStream(this.store, { kind: this.work.kind, namespace, filters: this.work.filters }, undefined, this.cut);
    return { namespace, stream, first: await stream.next() };
  }

  /** The pages of `target` from its start, the first already read, if this read-ahead read them; undefined otherwise (then it is let go). */
  async take(store: Datastore, work: ReadAheadWork, target: SplitTarget, cut: StreamCut): Promise<AsyncGenerator<CutPage> | undefined> {
    const read = this.taken ? undefined : await this.read.catch(() => undefined);
    const sameCut = cut.pageKeys === this.cut.pageKeys && cut.slots === this.cut.slots;
    const matches = read !== undefined && store === this.store && work === this.work && sameCut && target.namespace === read.namespace;
    if (!matches) {
      this.discard();
      return undefined;
    }
    this.taken = true;
    return pagesFrom(read.first, read.stream);
  }

  /** Whether this reads `work`'s keys from `store`, not yet taken. */
  reads(store: Datastore, work: unknown): boolean {
    return !this.taken && store === this.store && work === this.work;
  }

  /** Lets go of the page read, unless it was taken. */
  discard(): void {
    if (this.taken) return;
    this.taken = true;
    void this.read.then((read) => read?.stream.return(undefined)).catch(() => undefined);
  }
}

async function* pagesFrom(first: IteratorResult<CutPage>, rest: AsyncGenerator<CutPage>): AsyncGenerator<CutPage> {
  try {
    if (first.done) return;
    yield first.value;
    yield* rest;
  } finally {
    await rest.return(undefined);
  }
}
