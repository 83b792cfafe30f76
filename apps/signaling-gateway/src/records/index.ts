export {
  createIndexerClient,
  type IndexerClient,
  type IndexerClientOptions,
  InvalidLookupResultError,
} from './indexer-client';
export {
  INDEXER_RETRY_AFTER_SECONDS,
  RECEIPT_PENDING_RETRY_AFTER_SECONDS,
  type RecordsOptions,
  recordsRoutes,
} from './routes';
