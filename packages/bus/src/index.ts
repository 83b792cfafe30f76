export {
  type AuditEventInput,
  type AuditPublisher,
  type AuditPublisherOptions,
  createAuditPublisher,
} from './audit';
export { assertRedisReachable, createRedisConnection, redactUrl } from './connection';
export {
  type AddRecordBatchOptions,
  ANCHORING_FIELD,
  ANNOUNCE_LUA,
  type AnchoringAnnouncement,
  addRecordBatch,
  addRecordBatches,
  announceAnchoring,
  compareEntryIds,
  entryIdOf,
  FANOUT_LUA,
  forgetJobPositions,
  POSITIONS_TTL_S,
  parsePositions,
  positionOfEntryId,
  readJobPositions,
  STREAM_FIELD,
  type StreamEntryFields,
  streamEntry,
  WATCH_LUA,
  watchTopics,
} from './fanout';
export {
  type BatchPage,
  createIndexerClient,
  type IndexerClient,
  type IndexerClientOptions,
  InvalidLookupResultError,
} from './indexer-client';
export { createKeys, type Keys } from './keys';
export { mgetJobPositions } from './positions';
export {
  type JobData,
  type JobName,
  type JobResult,
  jobIds,
  QUEUES,
  type QueueJobs,
  type QueueKind,
} from './queues';
export {
  createRelayRegistry,
  type RelayInfo,
  type RelayRegistry,
  type SessionReservation,
  type SessionRoute,
  subjectSuspendedKey,
} from './registry';
export {
  RemoteError,
  type RequestReplyOptions,
  RequestTimeoutError,
  requestReply,
} from './request-reply';
export {
  type BusDeps,
  createQueue,
  createQueueEvents,
  createWorker,
  queueName,
  type TypedJob,
  type TypedQueue,
  type TypedWorker,
} from './typed';
