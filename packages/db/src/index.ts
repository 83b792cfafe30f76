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
  type Anchoring,
  type BatchLedger,
  confirmationsAt,
  createBatchLedger,
  type DeliverableReceipt,
  type LeafStamp,
  LedgerError,
  type LedgerScope,
  type NewBuiltBatch,
  type RecordLookup,
  type SignedTx,
} from './ledger';
export type * from './schema';
