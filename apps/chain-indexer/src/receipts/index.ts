export {
  createReceiptOutbox,
  type FlushResult,
  type OutboxDeps,
  type ReceiptOutbox,
  receiptJobId,
} from './outbox';
