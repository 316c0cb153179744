export { LocalExecutor, type LocalExecutorOptions } from './local';
export { dryRunOperation } from './dry-run';
