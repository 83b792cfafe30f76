export {
  type ChainFollower,
  type ChainFollowerOptions,
  createChainFollower,
} from './follower';
export { type BatchPages, fetchBatchPages, fetchTopicPage, type GatewayReader } from './gateway';
export { AnchoredRecordLedger } from './ledger';
export { readBatchAnchoredLogs } from './logs';
export type {
  AnchoredBatchLog,
  BatchEvent,
  ChainFollowerEvent,
  FollowedLeaf,
  ProblemEvent,
  ProblemKind,
  ProgressEvent,
  ServedRecord,
} from './types';
export {
  type BatchVerification,
  leavesAnchored,
  type VerifyBatchOptions,
  verifyBatch,
} from './verify-batch';
