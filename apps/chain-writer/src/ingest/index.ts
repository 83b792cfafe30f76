export { type DeadLetter, insertDeadLetters, isDataError, storableText } from './dead-letters';
export {
  type GroupJob,
  INSERT_CHUNK_ROWS,
  insertRecords,
  type StoreJobResult,
  storeJob,
  storeJobs,
  storeRecords,
} from './store';
export { checkRecord, type RecordCheck, STORED_LIMITS } from './validate';
export {
  createGroupCommit,
  createIngestWorker,
  GROUP_MAX_RECORDS,
  type GroupCommit,
  type GroupCommitOptions,
  type IngestDeps,
  recordBatchJobProblem,
} from './worker';
