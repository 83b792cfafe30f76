export { createReceiptsWorker } from './worker';
