export {
  BATCH_PENDING_RETRY_AFTER_SECONDS,
  type HistoryLimits,
  type HistoryOptions,
  historyRoutes,
} from './routes';
