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
