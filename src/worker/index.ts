/** The worker: the HTTP endpoint that Cloud Tasks dispatches a run's tasks to, and nothing else (the run itself is src/executors/cloud-tasks). */
export { createWorker, startWorker, type WorkerOptions, type RunningWorker } from './worker';
export { createWorkerHandler, jsonLog, type RequestHandler, type WorkerHandlerOptions, type WorkerLogEntry } from './handler';
export { authenticatorFor, hmacAuthenticator, oidcAuthenticator, type Authenticator, type AuthResult, type CertSource } from './auth';
export { startWorkerServer, type WorkerServer } from './server';
