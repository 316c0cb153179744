export { LocalExecutor, DEFAULT_CONCURRENCY, type LocalExecutorOptions } from './local';
export { dryRunOperation } from './dry-run';
export { verifyMigrations, verifyOperation, type VerifyReport, type OperationVerdict, type VerifyProblem, type VerifyOptions } from './verify';
