export {
  type AppendResult,
  AUDIT_GENESIS_HASH,
  type AuditChainCheck,
  type AuditEntryFields,
  type AuditHead,
  appendAudit,
  auditEntryHash,
  auditEntryText,
  auditFieldsOf,
  readHead as readAuditHead,
  verifyAuditChain,
} from './audit';
export {
  type DatabaseConfig,
  type DatabaseHandle,
  type DatabaseKind,
  type DatabaseLogger,
  migrateToLatest,
  openDatabase,
  openServiceDatabase,
} from './database';
export {
  type BatchLeafDetails,
  batchLeafDetails,
  batchTopicPositions,
  recordById,
  type StoredRecordRow,
  type TopicRecord,
  type TopicRecordsQuery,
  topicHead,
  topicRecordsAfter,
} from './history';
export {
  type Anchoring,
  type BatchContent,
  type BatchContentRow,
  type BatchLedger,
  type BatchLookup,
  BatchRootMismatchError,
  confirmationsAt,
  createBatchLedger,
  type DeliverableRecord,
  type LeafStamp,
  LedgerError,
  type LedgerScope,
  leafFieldsOf,
  type NewBuiltBatch,
  type NoticeContent,
  type RecordLookup,
  readBatchContent,
  type SignedTx,
} from './ledger';
export {
  type PrunePayloadsOptions,
  type PrunePayloadsResult,
  pruneRecordPayloads,
} from './retention';
export type * from './schema';
