export { createLookupWorker, type LookupWorker, type LookupWorkerDeps } from './worker';
