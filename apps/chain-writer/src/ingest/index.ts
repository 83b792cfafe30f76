export { type DeadLetter, insertDeadLetters, isDataError, storableText } from './dead-letters';
export { INSERT_CHUNK_ROWS, type StoreJobResult, storeJob, storeRecords } from './store';
export { checkRecord, type RecordCheck, STORED_LIMITS } from './validate';
export { createIngestWorker, type IngestDeps, recordBatchJobProblem } from './worker';
