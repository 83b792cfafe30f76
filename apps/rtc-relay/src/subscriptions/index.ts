export {
  createSubscriptionHub,
  type HistoryRecord,
  type ReadHistory,
  type Subscriber,
  type SubscriptionHub,
  type SubscriptionHubDeps,
  type SubscriptionHubStats,
} from './hub';
