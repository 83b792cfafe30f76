import type { AcceptedRecord } from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';

export type Outcome =
  | { ok: true }
  | { ok: false; code: 'unavailable' | 'shutting_down'; detail: string }
  | { ok: false; code: 'rate_limited'; detail: string; retryAfterMs: number };
/** Told a submitted record's outcome, with the `context` it was submitted with. */
export type OnOutcome<C = undefined> = (outcome: Outcome, context: C) => void;

/** Options of the `recordBatch` jobs (the app's queueGroup): the writer retries for days, and a failed job stays for inspection. */
export const RECORD_JOB_OPTIONS = {
  attempts: 20,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: true,
  removeOnFail: false,
} as const;

/**
 * Jobs per add the app's pipeline allows (jobsPerAdd): with RECORD_FLUSH_MAX 500, an add
 * takes up to 2,000 records waiting for the one before it (one MULTI of about 1 MB, a few
 * milliseconds of Redis). With one job per add the relay acked at most 500 records per add
 * (an add takes about 10 ms under load) while the rest piled up: 12,000 records waiting on
 * average in the relay-ingest bench (2026-12-06), old enough to be promoted by the young
 * generation GC. With four, 1,000 to 2,000 wait, and the bench's relay/sink ratio went from
 * 0.59–0.78 to 0.75–0.96 (alternated runs of 40,000 records, this constant the only change).
 */
export const RECORD_JOBS_PER_ADD = 4;

export interface RecordPipelineOptions {
  /**
   * Queues one group durably, in one add: its records, in order, as `jobs`, each one
   * `recordBatch` job of at most flushMax records (the app's: `addRecordBatches`, every job
   * added and fanned out to its topics' streams in one MULTI). A failure fails the whole
   * group (retried, then all its records nacked). Must be safe to retry after a failure
   * whose effect is unknown.
   */
  queueGroup: (jobs: readonly (readonly AcceptedRecord[])[]) => Promise<unknown>;
  /**
   * Longest a record waits for companions while an add slot is free (0: until the end of
   * the current event-loop turn). With every slot taken, records wait for the first add to
   * finish instead, and its group takes all of them (up to flushMax × jobsPerAdd).
   */
  flushMs: number;
  /** Most records in one job. */
  flushMax: number;
  /**
   * Most jobs in one group (default 1): with records waiting for the add in flight, the next
   * group takes up to flushMax × jobsPerAdd of them, in one add. An add costs a round trip to
   * Redis and a turn of the event loop besides its records, and with one add in flight the
   * relay acks at most one group per add (see RECORD_JOBS_PER_ADD). Jobs keep their size:
   * the writer sees the same jobs, in the same order.
   */
  jobsPerAdd?: number;
  /** Most records waiting across all sessions; beyond it submissions are refused (`unavailable`). */
  bufferMax: number;
  /**
   * Most records of one session waiting (buffered or in flight), so that one session cannot
   * fill the shared buffer; beyond it that session's submissions are refused (`rate_limited`).
   * Default: bufferMax (no per-session share).
   */
  sessionBufferMax?: number;
  /**
   * Most adds in flight at once (default 1). More lets the next group go out while one waits
   * for Redis, but then a group whose add failed and is retried can be queued after a later
   * one, and topic positions (given as groups are queued) would no longer follow ack order
   * (docs/protocol.md §5.9). One costs nothing measurable here: the buffer fills while an
   * add is in flight and the next group takes all of it (relay-ingest bench, 2026-12-06:
   * 0.58–0.62 of the bare sink with 1, 0.54–0.63 with 2).
   */
  addsInFlight?: number;
  logger: Logger;
}

export interface RecordPipelineStats {
  /** Records waiting for a queue add (buffered or in flight). */
  pending: number;
  jobsAdded: number;
  recordsQueued: number;
  failedAdds: number;
  recordsRefused: number;
  /** Submissions refused because their session had its share of the buffer waiting. */
  recordsRateLimited: number;
}

export interface RecordPipeline {
  /**
   * Hands a record over; `onOutcome` is called exactly once, after its group's add settled,
   * with `context` (a caller's state for this record, so that one function can serve every
   * record instead of a closure per record).
   */
  submit<C = undefined>(record: AcceptedRecord, onOutcome: OnOutcome<C>, context?: C): void;
  /** Queues everything buffered now and waits until no add is in flight. */
  drain(): Promise<void>;
  /** Refuses further submissions (`shutting_down`) and drains. */
  close(): Promise<void>;
  stats(): RecordPipelineStats;
}

interface Entry {
  record: AcceptedRecord;
  onOutcome: OnOutcome<unknown>;
  context: unknown;
}

/**
 * Pauses between tries of one group's add. A failed add may still have been written (the
 * reply was lost); the job id is deterministic, so a retry that succeeds never makes a
 * second job, and the records are acked instead of nacked with an uncertain outcome.
 */
export const ADD_RETRY_DELAYS_MS = [50, 200] as const;

async function addWithRetry(add: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await add();
      return;
    } catch (error) {
      const delay = ADD_RETRY_DELAYS_MS[attempt];
      if (delay === undefined) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

const OK: Outcome = { ok: true };
const SHUTTING_DOWN: Outcome = {
  ok: false,
  code: 'shutting_down',
  detail: 'the relay is shutting down',
};
const BUFFER_FULL: Outcome = {
  ok: false,
  code: 'unavailable',
  detail: 'too many records waiting to be queued',
};
const QUEUE_UNAVAILABLE: Outcome = {
  ok: false,
  code: 'unavailable',
  detail: 'the record queue is unavailable',
};

/**
 * Groups records from every session into `recordBatch` jobs on the `records` queue, each
 * fanned out to its topics' streams in the same MULTI as its add (`addRecordBatches`), (group
 * commit): a group (up to jobsPerAdd jobs of up to flushMax records) is queued when it is
 * full, or when an add slot is free (after `flushMs`, or at the end of the event-loop turn).
 * Up to `addsInFlight` adds are in flight at a time and the buffer keeps filling meanwhile.
 * Outcomes are reported in submission order (a later add that finishes first waits for the
 * earlier ones).
 */
export function createRecordPipeline(options: RecordPipelineOptions): RecordPipeline {
  const { queueGroup, flushMs, flushMax, bufferMax, logger } = options;
  const addsInFlight = Math.max(1, options.addsInFlight ?? 1);
  /** Most records in one group (one add). */
  const groupMax = flushMax * Math.max(1, options.jobsPerAdd ?? 1);
  const sessionBufferMax = options.sessionBufferMax ?? bufferMax;
  // A session over its share waits at least for the add in flight and the next one.
  const shareRetryMs = Math.max(50, 2 * flushMs);
  /** Records waiting (buffered or in flight) per session id. */
  const waiting = new Map<string, number>();
  let buffer: Entry[] = [];
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  /** Adds not yet finished (the slots taken). */
  let adding = 0;
  /** Settles after every group handed to an add so far has been settled, in order. */
  let settled: Promise<void> = Promise.resolve();
  /** Records handed to an add and not yet settled. */
  let unsettled = 0;
  let closed = false;
  const stats = {
    jobsAdded: 0,
    recordsQueued: 0,
    failedAdds: 0,
    recordsRefused: 0,
    recordsRateLimited: 0,
  };

  function settle(group: Entry[], outcome: Outcome): void {
    for (const entry of group) {
      const sessionId = entry.record.sessionId;
      const left = (waiting.get(sessionId) ?? 1) - 1;
      if (left <= 0) waiting.delete(sessionId);
      else waiting.set(sessionId, left);
    }
    for (const entry of group) {
      try {
        entry.onOutcome(outcome, entry.context);
      } catch (error) {
        logger.error({ err: error }, 'record outcome callback threw');
      }
    }
  }

  /** Queues one group; never rejects. */
  async function add(group: Entry[]): Promise<Outcome> {
    const jobs: AcceptedRecord[][] = [];
    for (let start = 0; start < group.length; start += flushMax) {
      const end = Math.min(group.length, start + flushMax);
      // Filled by push, not `new Array(n)`: a holey array stays holey through the job's copy
      // of it, and JSON.stringify takes its slow path for holey arrays.
      const records: AcceptedRecord[] = [];
      for (let i = start; i < end; i++) records.push(group[i]!.record);
      jobs.push(records);
    }
    try {
      await addWithRetry(() => queueGroup(jobs));
    } catch (error) {
      stats.failedAdds += 1;
      stats.recordsRefused += group.length;
      logger.warn(
        { err: error, records: group.length },
        'could not queue records; nacking them unavailable',
      );
      return QUEUE_UNAVAILABLE;
    }
    stats.jobsAdded += jobs.length;
    stats.recordsQueued += group.length;
    return OK;
  }

  /**
   * Queues the buffer once this event-loop turn's messages are in (flushMs 0), or after
   * flushMs: a record that finds an add slot free does not wait for a timer, and a group
   * still takes every record that arrived in the same turn.
   */
  function schedule(): void {
    if (timer || immediate) return;
    if (flushMs > 0) timer = setTimeout(flush, flushMs);
    else immediate = setImmediate(flush);
  }

  function flush(): void {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (immediate) {
      clearImmediate(immediate);
      immediate = undefined;
    }
    while (adding < addsInFlight && buffer.length > 0) {
      let group: Entry[];
      if (buffer.length <= groupMax) {
        group = buffer;
        buffer = [];
      } else group = buffer.splice(0, groupMax);
      adding += 1;
      unsettled += group.length;
      const written = add(group).finally(() => {
        adding -= 1;
        // With several adds in flight this group may have to wait for an earlier one to
        // settle: its slot takes the records waiting at once.
        if (addsInFlight > 1 && buffer.length > 0) flush();
      });
      const before = settled;
      settled = (async () => {
        const outcome = await written;
        // Acks leave in submission order: an earlier group settles first.
        await before;
        unsettled -= group.length;
        settle(group, outcome);
        // Whatever arrived meanwhile has already waited for a whole add: queue it now, its
        // MULTI built after this group's acks went out (the sessions send them in a
        // microtask queued by settle, which runs before the add's first await is over).
        // Building a group of a thousand records takes milliseconds: the acks went after
        // it before, and the bigger groups of jobsPerAdd made that worse.
        if (buffer.length > 0) flush();
      })();
    }
  }

  return {
    submit<C>(record: AcceptedRecord, onOutcome: OnOutcome<C>, context?: C) {
      if (closed) return onOutcome(SHUTTING_DOWN, context as C);
      if (buffer.length >= bufferMax) {
        stats.recordsRefused += 1;
        return onOutcome(BUFFER_FULL, context as C);
      }
      const mine = waiting.get(record.sessionId) ?? 0;
      if (mine >= sessionBufferMax) {
        stats.recordsRateLimited += 1;
        return onOutcome(
          {
            ok: false,
            code: 'rate_limited',
            detail: `this session has ${mine} records waiting to be queued`,
            retryAfterMs: shareRetryMs,
          },
          context as C,
        );
      }
      waiting.set(record.sessionId, mine + 1);
      buffer.push({ record, onOutcome: onOutcome as OnOutcome<unknown>, context });
      if (adding >= addsInFlight) return;
      if (buffer.length >= groupMax) flush();
      else schedule();
    },
    async drain() {
      while (buffer.length > 0 || unsettled > 0) {
        flush();
        await settled;
      }
    },
    async close() {
      closed = true;
      await this.drain();
    },
    stats() {
      return { pending: buffer.length + unsettled, ...stats };
    },
  };
}
