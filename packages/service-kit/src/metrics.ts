import { Counter, collectDefaultMetrics, Gauge, Histogram, register } from 'prom-client';

/**
 * Metrics: prom-client's default registry, one per process, served by the ops server
 * (`createOpsServer`). Names start with `streamanchor_`; labels stay low-cardinality (codes,
 * queue kinds, routes), never ids.
 *
 * Most values already live in the apps' own `stats()` objects; they are read on each scrape
 * (`collectedMetric`) rather than counted a second time. A process may hold several app
 * instances (tests; the local stack's chain-services runs writer and indexer together), so
 * each metric is created once per process and sums the live instances that registered with
 * it; an instance unregisters on stop.
 */

export { Counter, Gauge, Histogram, register as registry };
export type Registry = typeof register;

export type Labels = Record<string, string>;
/** A value, or one value per label set. */
export type Reading = number | ReadonlyArray<readonly [Labels, number]>;

/** Registers prom-client's `process_*` and `nodejs_*` metrics, once per process. */
export function ensureDefaultMetrics(): void {
  if (register.getSingleMetric('process_cpu_user_seconds_total')) return;
  collectDefaultMetrics();
}

/** The metric named `name` in the default registry, created by `create` the first time. */
export function sharedMetric<T>(name: string, create: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? create();
}

const sourcesByMetric = new Map<string, Set<unknown>>();

/**
 * A gauge (or a counter, for totals that only grow while the source lives) read from its live
 * sources on each scrape. Returns `add(source)`, which returns the function that removes it.
 */
export function collectedMetric<S>(spec: {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  labelNames?: readonly string[];
  read(source: S): Reading;
}): (source: S) => () => void {
  let live = sourcesByMetric.get(spec.name) as Set<S> | undefined;
  if (!live) {
    live = new Set<S>();
    sourcesByMetric.set(spec.name, live);
  }
  const set = live;
  if (!register.getSingleMetric(spec.name)) {
    const collect = function (this: Gauge | Counter) {
      this.reset();
      for (const source of set) {
        const reading = spec.read(source);
        if (typeof reading === 'number') this.inc(reading);
        else for (const [labels, value] of reading) this.inc(labels, value);
      }
    };
    const config = {
      name: spec.name,
      help: spec.help,
      labelNames: [...(spec.labelNames ?? [])],
      collect,
    };
    if (spec.type === 'gauge') new Gauge(config);
    else new Counter(config);
  }
  return (source) => {
    set.add(source);
    return () => void set.delete(source);
  };
}

/** What `registerQueueDepths` reads: a BullMQ Queue (structurally). */
export interface JobCountsSource {
  getJobCounts(...types: ('waiting' | 'active' | 'delayed' | 'failed')[]): Promise<{
    [state: string]: number;
  }>;
}

/** The job states `streamanchor_queue_jobs` reports. */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
/** Longest a scrape waits for one queue's counts (a Redis that does not answer). */
const QUEUE_COUNT_TIMEOUT_MS = 2000;

const queueSources = new Set<Readonly<Record<string, JobCountsSource>>>();

/**
 * `streamanchor_queue_jobs{queue,state}`: the jobs of each queue a service owns or consumes,
 * by state, read from Redis on each scrape (a queue whose counts do not arrive within 2 s is
 * left out of that scrape). `queues` maps a queue kind (`records`, `receipts`, …; not the
 * per-relay name) to its queue. Returns the function that removes them.
 */
export function registerQueueDepths(queues: Readonly<Record<string, JobCountsSource>>): () => void {
  sharedMetric(
    'streamanchor_queue_jobs',
    () =>
      new Gauge({
        name: 'streamanchor_queue_jobs',
        help: 'BullMQ jobs of the queues this process owns or consumes, by queue kind and state (read on scrape)',
        labelNames: ['queue', 'state'],
        async collect() {
          this.reset();
          const reads = [...queueSources].flatMap((group) => Object.entries(group));
          const counts = await Promise.all(
            reads.map(([, queue]) => withTimeout(queue.getJobCounts(...QUEUE_STATES))),
          );
          reads.forEach(([kind], i) => {
            const count = counts[i];
            if (!count) return;
            for (const state of QUEUE_STATES) this.inc({ queue: kind, state }, count[state] ?? 0);
          });
        },
      }),
  );
  queueSources.add(queues);
  return () => void queueSources.delete(queues);
}

async function withTimeout<T>(promise: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), QUEUE_COUNT_TIMEOUT_MS);
  });
  try {
    return await Promise.race([promise.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
