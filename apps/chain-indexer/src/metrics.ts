import { Counter, Gauge, sharedMetric } from '@streamanchor/service-kit';
import type { FlushResult } from './receipts';
import type { SyncStep } from './sync';

/** The indexer's metrics (docs: README "Observability"), updated after each step and flush. */
const lag = sharedMetric(
  'streamanchor_indexer_lag_blocks',
  () =>
    new Gauge({
      name: 'streamanchor_indexer_lag_blocks',
      help: 'chain head minus the last indexed block (CONFIRMATIONS included), after the last step',
    }),
);
const indexed = sharedMetric(
  'streamanchor_indexer_indexed_block',
  () =>
    new Gauge({
      name: 'streamanchor_indexer_indexed_block',
      help: 'last block indexed (the cursor)',
    }),
);
const receipts = sharedMetric(
  'streamanchor_indexer_receipts_notified_total',
  () =>
    new Counter({
      name: 'streamanchor_indexer_receipts_notified_total',
      help: 'receipts queued to the relays (before deduplication by job id)',
    }),
);
const notices = sharedMetric(
  'streamanchor_indexer_receipt_notices_total',
  () =>
    new Counter({
      name: 'streamanchor_indexer_receipt_notices_total',
      help: 'receipt notices (batch anchoring revisions: included, final, reorged) sent out',
    }),
);
const invalid = sharedMetric(
  'streamanchor_indexer_receipts_invalid_total',
  () =>
    new Counter({
      name: 'streamanchor_indexer_receipts_invalid_total',
      help: 'receipts not sent because their proof did not verify',
    }),
);
const reorgs = sharedMetric(
  'streamanchor_indexer_reorgs_total',
  () =>
    new Counter({
      name: 'streamanchor_indexer_reorgs_total',
      help: 'rewinds after indexed blocks left the chain',
    }),
);
const events = sharedMetric(
  'streamanchor_indexer_events_total',
  () =>
    new Counter({
      name: 'streamanchor_indexer_events_total',
      help: 'contract events indexed',
    }),
);

export function observeStep(step: SyncStep, confirmations: number): void {
  lag.set(Math.max(0, Number(step.target - step.cursor) + confirmations));
  indexed.set(Number(step.cursor));
  events.inc(step.events);
  if (step.rewound) reorgs.inc();
}

export function observeFlush(result: FlushResult): void {
  receipts.inc(result.receipts);
  notices.inc(result.notices);
  invalid.inc(result.invalid);
}
