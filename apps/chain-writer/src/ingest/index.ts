export { INSERT_CHUNK_ROWS, storeRecords } from './store';
export { createIngestWorker, type IngestDeps, recordBatchJobProblem } from './worker';
