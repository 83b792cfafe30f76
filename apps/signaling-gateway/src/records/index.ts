export {
  INDEXER_RETRY_AFTER_SECONDS,
  RECEIPT_PENDING_RETRY_AFTER_SECONDS,
  type RecordsOptions,
  recordsRoutes,
} from './routes';
