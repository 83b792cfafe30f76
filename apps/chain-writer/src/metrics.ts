import type { Database } from '@streamanchor/db';
import {
  Counter,
  collectedMetric,
  Gauge,
  Histogram,
  type Logger,
  sharedMetric,
} from '@streamanchor/service-kit';
import type { Kysely } from 'kysely';

/**
 * The writer's metrics (docs: README "Observability"): counters of what it stored and built,
 * the batches not yet final and the age of the oldest unanchored one (read from the database
 * on each scrape), and the anchor latency of every record (accepted by a relay → its batch's
 * anchoring seen on chain by this process).
 */
const recordsStored = sharedMetric(
  'streamanchor_writer_records_stored_total',
  () =>
    new Counter({
      name: 'streamanchor_writer_records_stored_total',
      help: 'records stored in the database from the records queue',
    }),
);
const batchesBuilt = sharedMetric(
  'streamanchor_writer_batches_built_total',
  () =>
    new Counter({
      name: 'streamanchor_writer_batches_built_total',
      help: 'batches cut (Merkle tree built)',
    }),
);
const batchesAnchored = sharedMetric(
  'streamanchor_writer_batches_anchored_total',
  () =>
    new Counter({
      name: 'streamanchor_writer_batches_anchored_total',
      help: 'batches whose anchoring this process saw on chain',
    }),
);
const anchorLatency = sharedMetric(
  'streamanchor_writer_anchor_latency_seconds',
  () =>
    new Histogram({
      name: 'streamanchor_writer_anchor_latency_seconds',
      help: "from a record's acceptance by a relay to its batch's anchoring seen on chain (one observation per record)",
      buckets: [0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600],
    }),
);

interface LedgerSource {
  db: Kysely<Database>;
  chainId: number;
  contract: string;
}

const UNFINISHED = ['built', 'sent', 'included'] as const;

const pendingBatches = sharedMetric('streamanchor_writer_batches', () => {
  const sources = new Set<LedgerSource>();
  const gauge = new Gauge({
    name: 'streamanchor_writer_batches',
    help: 'batches not final yet, by status (built: not signed; sent: tx broadcast; included: anchored, not final); read on scrape',
    labelNames: ['status'],
    async collect() {
      this.reset();
      for (const source of sources) {
        const rows = await source.db
          .selectFrom('batches')
          .select(['status', (eb) => eb.fn.countAll<string | number>().as('n')])
          .where('status', 'in', UNFINISHED)
          .where('chain_id', '=', source.chainId)
          .where('contract', '=', source.contract)
          .groupBy('status')
          .execute();
        for (const status of UNFINISHED) this.inc({ status }, 0);
        for (const row of rows) this.inc({ status: row.status }, Number(row.n));
      }
    },
  });
  return Object.assign(gauge, { sources });
});

const batchAge = sharedMetric('streamanchor_writer_unanchored_batch_age_seconds', () => {
  const sources = new Set<LedgerSource>();
  const gauge = new Gauge({
    name: 'streamanchor_writer_unanchored_batch_age_seconds',
    help: 'age of the oldest batch not anchored yet (built or sent); 0 when none (read on scrape)',
    async collect() {
      let oldest: number | undefined;
      for (const source of sources) {
        const row = await source.db
          .selectFrom('batches')
          .select((eb) => eb.fn.min('created_at').as('oldest'))
          .where('status', 'in', ['built', 'sent'])
          .where('chain_id', '=', source.chainId)
          .where('contract', '=', source.contract)
          .executeTakeFirst();
        const at = row?.oldest ? new Date(row.oldest as Date | string).getTime() : undefined;
        if (at !== undefined && (oldest === undefined || at < oldest)) oldest = at;
      }
      this.set(oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
    },
  });
  return Object.assign(gauge, { sources });
});

const deadLetters = collectedMetric<{ readonly deadLetters: number }>({
  name: 'streamanchor_writer_dead_letters_total',
  help: 'records and audit events written to dead_letters',
  type: 'counter',
  read: (source) => source.deadLetters,
});

/** Batch ids already observed, so a batch seen confirmed again (recheck, reorg) counts once. */
const OBSERVED_KEPT = 10_000;

export interface WriterMetricsDeps extends LedgerSource {
  logger: Logger;
  /** The submitter's batches seen anchored → when (ms); read every `pollMs`. */
  confirmed: () => ReadonlyMap<string, number> | undefined;
  counters: { readonly deadLetters: number };
  pollMs?: number;
}

export interface WriterMetricsHooks {
  recordsStored(count: number): void;
  batchBuilt(): void;
  /** Reads newly confirmed batches into the anchor latency histogram (also run by the poll). */
  poll(): Promise<void>;
  stop(): void;
}

/** Registers the writer's metrics and starts following anchorings; stop() removes them. */
export function startWriterMetrics(deps: WriterMetricsDeps): WriterMetricsHooks {
  const source: LedgerSource = { db: deps.db, chainId: deps.chainId, contract: deps.contract };
  pendingBatches.sources.add(source);
  batchAge.sources.add(source);
  const removeDeadLetters = deadLetters(deps.counters);
  const observed = new Set<string>();
  let polling: Promise<void> | undefined;

  async function pollOnce(): Promise<void> {
    const fresh = [...(deps.confirmed() ?? [])].filter(([id]) => !observed.has(id));
    for (const [batchId, confirmedAt] of fresh) {
      const rows = await deps.db
        .selectFrom('record_leaves')
        .select('accepted_at')
        .where('batch_id', '=', batchId)
        .execute();
      for (const row of rows)
        anchorLatency.observe(Math.max(0, (confirmedAt - Number(row.accepted_at)) / 1000));
      batchesAnchored.inc();
      observed.add(batchId);
      if (observed.size > OBSERVED_KEPT) {
        const first = observed.values().next().value;
        if (first !== undefined) observed.delete(first);
      }
    }
  }

  function poll(): Promise<void> {
    polling ??= pollOnce()
      .catch((error) => deps.logger.warn({ err: error }, 'reading anchor latencies failed'))
      .finally(() => {
        polling = undefined;
      });
    return polling;
  }

  const timer = setInterval(() => void poll(), deps.pollMs ?? 1000);
  timer.unref();
  return {
    recordsStored: (count) => recordsStored.inc(count),
    batchBuilt: () => batchesBuilt.inc(),
    poll,
    stop() {
      clearInterval(timer);
      pendingBatches.sources.delete(source);
      batchAge.sources.delete(source);
      removeDeadLetters();
    },
  };
}
