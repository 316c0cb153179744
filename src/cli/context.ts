import { Datastore } from '../datastore';
import { LocalExecutor } from '../executors';
import { loadGraph, type Executor, type MigrationGraph } from '../migrations';
import { applyProjectUndo } from '../operations';
import { resolveConfig, type ConfigFlags, type ResolvedConfig } from './config';

export interface CliContext {
  config: ResolvedConfig;
  store: Datastore;
  graph: MigrationGraph;
  executor: Executor;
  close(): Promise<void>;
}

/** Loads the migrations before connecting, so that a broken file fails fast and touches nothing. */
export async function openContext(flags: ConfigFlags, options: { needGraph?: boolean } = {}): Promise<CliContext> {
  const config = await resolveConfig(flags);
  const graph = options.needGraph === false ? { ordered: [], byId: new Map(), dependents: new Map() } : await loadGraph(config.sources);
  if (config.undo)
    applyProjectUndo(
      graph.ordered.flatMap((m) => m.definition.operations),
      config.undo,
    );
  // The lifecycle's transactions follow one another: each starts on one begun while the last ran.
  const store = await Datastore.connect({ ...config.store, beginAhead: true });
  return {
    config,
    store,
    graph,
    executor: new LocalExecutor({ concurrency: config.concurrency }),
    close: () => store.close(),
  };
}
