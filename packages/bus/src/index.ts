export { createKeys, type Keys } from './keys';
export { QUEUES, jobIds, type QueueJobs, type QueueKind, type JobName, type JobData, type JobResult } from './queues';
export {
  createQueue,
  createWorker,
  createQueueEvents,
  queueName,
  type BusDeps,
  type TypedQueue,
  type TypedJob,
  type TypedWorker,
} from './typed';
export { requestReply, RequestTimeoutError, RemoteError } from './request-reply';
export { createRelayRegistry, type RelayRegistry, type RelayInfo, type SessionRoute } from './registry';
export { createRedisConnection, assertRedisReachable, redactUrl } from './connection';
