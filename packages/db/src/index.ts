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
export type * from './schema';
