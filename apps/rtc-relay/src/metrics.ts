import { collectedMetric, type Reading } from '@streamanchor/service-kit';
import type { RelayStats } from './app';

/**
 * The relay's metrics (docs: README "Observability"), read from `stats()` on each scrape.
 * The records, receipts and relayControl queue depths come from `registerQueueDepths`.
 */
const metrics: ((source: () => RelayStats) => () => void)[] = [
  gauge('streamanchor_relay_sessions', 'sessions open on this relay', (s) => s.sessions),
  gauge(
    'streamanchor_relay_subscriptions',
    'topic subscriptions of the open sessions',
    (s) => s.subscriptions.subscriptions,
  ),
  gauge(
    'streamanchor_relay_records_pending',
    'records accepted and waiting to be queued for the chain-writer',
    (s) => s.pending,
  ),
  counter('streamanchor_relay_records_acked_total', 'records acked (queued)', (s) => s.acks),
  collectedMetric<() => RelayStats>({
    name: 'streamanchor_relay_records_nacked_total',
    help: 'messages nacked, by nack code',
    type: 'counter',
    labelNames: ['code'],
    read: (source) =>
      Object.entries(source().nacks).map(([code, value]) => [{ code }, value ?? 0] as const),
  }),
  counter(
    'streamanchor_relay_records_queued_total',
    'records added to the records queue',
    (s) => s.recordsQueued,
  ),
  counter(
    'streamanchor_relay_receipts_delivered_total',
    'receipts sent to their session',
    (s) => s.receiptsDelivered,
  ),
  counter(
    'streamanchor_relay_receipts_undeliverable_total',
    'receipts whose session was gone or whose records could not be looked up',
    (s) => s.receiptsUndeliverable,
  ),
  counter(
    'streamanchor_relay_slow_reader_closes_total',
    'sessions closed because their unsent bytes (bufferedAmount) exceeded MAX_BUFFERED_BYTES',
    (s) => s.closedSlowReaders,
  ),
  counter(
    'streamanchor_relay_subscription_records_delivered_total',
    'records sent to subscribers',
    (s) => s.subscriptions.recordsDelivered,
  ),
];

function gauge(name: string, help: string, read: (stats: RelayStats) => Reading) {
  return collectedMetric<() => RelayStats>({ name, help, type: 'gauge', read: (s) => read(s()) });
}

function counter(name: string, help: string, read: (stats: RelayStats) => Reading) {
  return collectedMetric<() => RelayStats>({ name, help, type: 'counter', read: (s) => read(s()) });
}

/** Exposes a relay's stats; returns the function that removes them (on stop). */
export function registerRelayMetrics(stats: () => RelayStats): () => void {
  const removers = metrics.map((add) => add(stats));
  return () => {
    for (const remove of removers) remove();
  };
}
