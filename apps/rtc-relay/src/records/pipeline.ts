import { jobIds, type TypedQueue } from '@streamanchor/bus';
import type { AcceptedRecord } from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';

export type Outcome =
  | { ok: true }
  | { ok: false; code: 'unavailable' | 'shutting_down'; detail: string }
  | { ok: false; code: 'rate_limited'; detail: string; retryAfterMs: number };
export type OnOutcome = (outcome: Outcome) => void;

/** Options of the `recordBatch` jobs: the writer retries for days, and a failed job stays for inspection. */
export const RECORD_JOB_OPTIONS = {
  attempts: 20,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: true,
  removeOnFail: false,
} as const;

export interface RecordPipelineOptions {
  queue: TypedQueue<'records'>;
  /** Longest a record waits for companions before its group is queued. */
  flushMs: number;
  /** Most records in one job. */
  flushMax: number;
  /** Most records waiting across all sessions; beyond it submissions are refused (`unavailable`). */
  bufferMax: number;
  /**
   * Most records of one session waiting (buffered or in flight), so that one session cannot
   * fill the shared buffer; beyond it that session's submissions are refused (`rate_limited`).
   * Default: bufferMax (no per-session share).
   */
  sessionBufferMax?: number;
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
  /** Hands a record over; `onOutcome` is called exactly once, after its group's add settled. */
  submit(record: AcceptedRecord, onOutcome: OnOutcome): void;
  /** Queues everything buffered now and waits until no add is in flight. */
  drain(): Promise<void>;
  /** Refuses further submissions (`shutting_down`) and drains. */
  close(): Promise<void>;
  stats(): RecordPipelineStats;
}

interface Entry {
  record: AcceptedRecord;
  onOutcome: OnOutcome;
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

/**
 * Groups records from every session into `recordBatch` jobs on the `records` queue
 * (group commit): a group is queued when it reaches `flushMax` records or after
 * `flushMs`; one add is in flight at a time and the buffer keeps filling meanwhile.
 * Outcomes are reported in submission order.
 */
export function createRecordPipeline(options: RecordPipelineOptions): RecordPipeline {
  const { queue, flushMs, flushMax, bufferMax, logger } = options;
  const sessionBufferMax = options.sessionBufferMax ?? bufferMax;
  // A session over its share waits at least for the add in flight and the next one.
  const shareRetryMs = Math.max(50, 2 * flushMs);
  /** Records waiting (buffered or in flight) per session id. */
  const waiting = new Map<string, number>();
  let buffer: Entry[] = [];
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let inFlightCount = 0;
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
        entry.onOutcome(outcome);
      } catch (error) {
        logger.error({ err: error }, 'record outcome callback threw');
      }
    }
  }

  async function add(group: Entry[]): Promise<void> {
    const records = group.map((entry) => entry.record);
    const first = records[0]!;
    try {
      await addWithRetry(() =>
        queue.add(
          'recordBatch',
          { records },
          { jobId: jobIds.recordBatch(first.recordId), ...RECORD_JOB_OPTIONS },
        ),
      );
    } catch (error) {
      stats.failedAdds += 1;
      stats.recordsRefused += group.length;
      logger.warn(
        { err: error, records: group.length },
        'could not queue records; nacking them unavailable',
      );
      settle(group, { ok: false, code: 'unavailable', detail: 'the record queue is unavailable' });
      return;
    }
    stats.jobsAdded += 1;
    stats.recordsQueued += group.length;
    settle(group, OK);
  }

  function flush(): void {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (inFlight || buffer.length === 0) return;
    let group: Entry[];
    if (buffer.length <= flushMax) {
      group = buffer;
      buffer = [];
    } else {
      group = buffer.slice(0, flushMax);
      buffer = buffer.slice(flushMax);
    }
    inFlightCount = group.length;
    inFlight = add(group).finally(() => {
      inFlight = undefined;
      inFlightCount = 0;
      // Whatever arrived meanwhile has already waited for a whole add: queue it now.
      if (buffer.length > 0) flush();
    });
  }

  return {
    submit(record, onOutcome) {
      if (closed) return onOutcome(SHUTTING_DOWN);
      if (buffer.length >= bufferMax) {
        stats.recordsRefused += 1;
        return onOutcome(BUFFER_FULL);
      }
      const mine = waiting.get(record.sessionId) ?? 0;
      if (mine >= sessionBufferMax) {
        stats.recordsRateLimited += 1;
        return onOutcome({
          ok: false,
          code: 'rate_limited',
          detail: `this session has ${mine} records waiting to be queued`,
          retryAfterMs: shareRetryMs,
        });
      }
      waiting.set(record.sessionId, mine + 1);
      buffer.push({ record, onOutcome });
      if (inFlight) return;
      if (buffer.length >= flushMax) flush();
      else if (!timer) timer = setTimeout(flush, flushMs);
    },
    async drain() {
      while (buffer.length > 0 || inFlight) {
        if (!inFlight) flush();
        await inFlight;
      }
    },
    async close() {
      closed = true;
      await this.drain();
    },
    stats() {
      return { pending: buffer.length + inFlightCount, ...stats };
    },
  };
}
