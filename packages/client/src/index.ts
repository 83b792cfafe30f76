export {
  type AcksMessage,
  type AnchoringMessage,
  type DeliveredRecord,
  type HelloMessage,
  type NackCode,
  NonCanonicalPayloadError,
  type Receipt,
  type ReceiptAnchor,
  type ReceiptRecord,
  type ReceiptsMessage,
  type ServerMessage,
  type UnsubscribeReason,
} from '@streamanchor/protocol';
export {
  type AnchoredBatchLog,
  AnchoredRecordLedger,
  type BatchEvent,
  type BatchPages,
  type BatchVerification,
  type ChainFollower,
  type ChainFollowerEvent,
  type ChainFollowerOptions,
  createChainFollower,
  type FollowedLeaf,
  fetchBatchPages,
  fetchTopicPage,
  type GatewayReader,
  leavesAnchored,
  type ProblemEvent,
  type ProblemKind,
  type ProgressEvent,
  readBatchAnchoredLogs,
  type ServedRecord,
  type VerifyBatchOptions,
  verifyBatch,
} from './chain-follower';
export { type ConnectOptions, connect } from './connect';
export {
  ChainFollowerError,
  ConnectError,
  IntegrityError,
  NackError,
  SessionClosedError,
  SessionRequestError,
  StreamAnchorError,
  SubscriptionError,
  VerificationError,
} from './errors';
export {
  type IceServer,
  type LinkValue,
  parseIceServerLinks,
  parseLinkHeader,
} from './link-header';
export { nodeDataChannelIceServers } from './node-datachannel';
export { parseProblem, problemFromResponse } from './problem';
export {
  type Ack,
  type FinalReceiptOptions,
  type PublishOptions,
  type RawResult,
  type SessionState,
  StreamAnchorSession,
} from './session';
export {
  deleteSessionResource,
  type FetchLike,
  fetchIceServers,
  fetchReceipt,
  postOffer,
  receiptUrl,
  type SessionResource,
  sessionsUrl,
} from './signaling';
export {
  type SubscribedBatch,
  type SubscribedRecord,
  type SubscribeOptions,
  Subscription,
  type SubscriptionEnd,
  verifyDeliveredRecord,
} from './subscription';
export {
  createReceiptVerifier,
  type OnChainCheck,
  type ReceiptVerification,
  type VerifyReceiptOptions,
  verifyReceipt,
} from './verify';
