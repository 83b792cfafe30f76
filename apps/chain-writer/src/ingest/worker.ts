import { TypeCompiler } from '@sinclair/typebox/compiler';
import {
  type BusDeps,
  createWorker,
  forgetJobPositions,
  mgetJobPositions,
  type TypedWorker,
} from '@streamanchor/bus';
import type { Database } from '@streamanchor/db';
import { RecordBatchJob } from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import { UnrecoverableError } from 'bullmq';
import type { Kysely } from 'kysely';
import { MalformedJobError } from '../errors';
import { type DeadLetter, insertDeadLetters } from './dead-letters';
import { type GroupJob, type StoreJobResult, storeJobs } from './store';

const recordBatchJobCheck = TypeCompiler.Compile(RecordBatchJob);

/** Returns why `data` is not a RecordBatchJob (at most a few problems), or undefined if it is one. */
export function recordBatchJobProblem(data: unknown): string | undefined {
  if (recordBatchJobCheck.Check(data)) return undefined;
  const problems: string[] = [];
  for (const error of recordBatchJobCheck.Errors(data)) {
    problems.push(`${error.path || '/'}: ${error.message}`);
    if (problems.length >= 3) break;
  }
  return problems.join('; ') || 'schema mismatch';
}

export interface IngestDeps {
  bus: BusDeps;
  db: Kysely<Database>;
  logger: Logger;
  concurrency: number;
  /** Called after a job stored at least one new record (wakes the batcher). */
  onStored?: (count: number) => void;
  /** Called with the dead letters a job wrote (the app counts them: `metrics.deadLetters`). */
  onDeadLettered?: (letters: readonly DeadLetter[]) => void;
}

/** Most records one group commit stores (the jobs of a group are taken whole). */
export const GROUP_MAX_RECORDS = 5000;

export interface GroupCommitOptions {
  /** Most records one group stores (default GROUP_MAX_RECORDS). */
  maxRecords?: number;
  /**
   * Where `addRecordBatch` left each job's topic positions (`keys.positions(jobId)`): read
   * for the whole group before it is stored, deleted once it committed. Without it, every
   * record is stored without a position.
   */
  bus?: BusDeps;
  /** Told of positions that do not fit their job and of keys that could not be deleted. */
  logger?: Logger;
}

export interface GroupCommit {
  /** Stores one job's items in the next group transaction; settles once it committed (or failed). */
  store(jobId: string, items: readonly unknown[]): Promise<StoreJobResult>;
  /** Groups committed, and jobs in them, since start (counters for tests and benchmarks). */
  readonly stats: { groups: number; jobs: number };
}

/**
 * Group commit: the jobs the worker holds at once (RECORDS_CONCURRENCY) are stored together,
 * one transaction for all of them (`storeJobs`) instead of one per job. A job that arrives
 * while a group's transaction runs waits for it and goes into the next group, so a lone job
 * waits for nobody and groups grow with the load. A job settles only after the transaction
 * holding it committed: BullMQ completes it (and nothing acked is lost) only then.
 *
 * With `bus`, each group costs two Redis round trips more: one MGET of its jobs' positions
 * before the transaction, one UNLINK of their keys after the commit (before the jobs
 * settle, so a completed job's key is gone; failing that, it expires). If the MGET fails, the
 * group fails (BullMQ retries its jobs): a record stored without its position keeps none.
 */
export function createGroupCommit(
  db: Kysely<Database>,
  { maxRecords = GROUP_MAX_RECORDS, bus, logger }: GroupCommitOptions = {},
): GroupCommit {
  interface Waiting {
    jobId: string;
    items: readonly unknown[];
    resolve: (result: StoreJobResult) => void;
    reject: (error: unknown) => void;
  }
  let waiting: Waiting[] = [];
  let running = false;
  const stats = { groups: 0, jobs: 0 };

  /** The group's jobs, each with its records' positions (one MGET for all). */
  async function withPositions(group: readonly Waiting[]): Promise<readonly GroupJob[]> {
    if (!bus) return group;
    const found = await mgetJobPositions(
      bus.connection,
      bus.keys,
      group.map((job) => job.jobId),
    );
    return group.map(({ jobId, items }, i) => {
      const positions = found[i];
      if (positions && !fitsJob(positions, items)) {
        // Not what addRecordBatch writes: no record of the job can be trusted with one.
        logger?.warn(
          { jobId, records: items.length, positions: positions.length },
          'positions do not fit their records job; its records are stored without positions',
        );
        return { jobId, items };
      }
      return { jobId, items, positions };
    });
  }

  /** Deletes the positions keys of a committed group's jobs (one UNLINK); they expire anyway. */
  async function forgetPositions(group: readonly Waiting[]): Promise<void> {
    if (!bus) return;
    try {
      await forgetJobPositions(
        bus.connection,
        bus.keys,
        group.map((job) => job.jobId),
      );
    } catch (error) {
      logger?.warn(
        { err: error, jobs: group.length },
        'could not delete the stored jobs’ positions keys; they expire',
      );
    }
  }

  async function run(): Promise<void> {
    running = true;
    try {
      while (waiting.length > 0) {
        let records = 0;
        let take = 0;
        while (
          take < waiting.length &&
          (take === 0 || records + waiting[take]!.items.length <= maxRecords)
        ) {
          records += waiting[take]!.items.length;
          take += 1;
        }
        const group = waiting.slice(0, take);
        waiting = waiting.slice(take);
        try {
          const results = await storeJobs(db, await withPositions(group));
          stats.groups += 1;
          stats.jobs += group.length;
          await forgetPositions(group);
          for (const [i, job] of group.entries()) job.resolve(results[i]!);
        } catch (error) {
          for (const job of group) job.reject(error);
        }
      }
    } finally {
      running = false;
    }
  }

  return {
    stats,
    store(jobId, items) {
      return new Promise<StoreJobResult>((resolve, reject) => {
        waiting.push({ jobId, items, resolve, reject });
        if (!running) void run();
      });
    },
  };
}

/** Whether a job's positions are one positive integer per item (what addRecordBatch writes). */
function fitsJob(positions: readonly number[], items: readonly unknown[]): boolean {
  return (
    positions.length === items.length &&
    positions.every((position) => Number.isSafeInteger(position) && position > 0)
  );
}

/** Dead letters logged one by one per job; the rest are summed up in one line. */
const LOGGED_PER_JOB = 20;

/**
 * The `records` queue worker. Each job's records are checked one by one: the valid ones are
 * stored exactly once, the others go to `dead_letters` (logged at error level and counted),
 * in one transaction — shared with the other jobs the worker holds at the time (group
 * commit, `createGroupCommit`) — and the job completes with `{ stored, deadLettered? }`. One bad
 * record never holds the rest of its job (other sessions, other subjects) hostage.
 * A job that is not a list of records at all fails at once (no retries), logged at error
 * level, its data kept as a dead letter (item_index -1) when it had any.
 */
export function createIngestWorker(deps: IngestDeps): TypedWorker<'records'> {
  const logger = deps.logger.child({ subsystem: 'ingest' });
  const group = createGroupCommit(deps.db, { bus: deps.bus, logger });
  const report = (jobId: string, letters: readonly DeadLetter[]) => {
    if (letters.length === 0) return;
    for (const letter of letters.slice(0, LOGGED_PER_JOB)) {
      logger.error(
        { jobId, itemIndex: letter.itemIndex, recordId: letter.recordId, reason: letter.reason },
        'ALERT: record dead-lettered (kept in dead_letters, not stored)',
      );
    }
    if (letters.length > LOGGED_PER_JOB) {
      logger.error(
        { jobId, deadLettered: letters.length },
        `ALERT: ${letters.length - LOGGED_PER_JOB} more records of this job dead-lettered`,
      );
    }
    deps.onDeadLettered?.(letters);
  };
  const worker = createWorker(
    deps.bus,
    'records',
    undefined,
    async (job) => {
      const jobId = job.id ?? `(no id) ${job.name}`;
      const data = job.data as unknown;
      const items = (data as { records?: unknown } | null)?.records;
      if (job.name !== 'recordBatch' || !Array.isArray(items) || items.length === 0) {
        const problem =
          job.name === 'recordBatch'
            ? (recordBatchJobProblem(data) ?? 'schema mismatch')
            : `unknown job name ${job.name}`;
        const error = new MalformedJobError(job.id, problem);
        logger.error(
          { err: error, jobId: job.id, jobName: job.name, details: error.details },
          error.shortMessage,
        );
        if (Array.isArray(items) ? items.length > 0 : data !== undefined && data !== null) {
          report(
            jobId,
            await insertDeadLetters(deps.db, 'records', jobId, [
              { itemIndex: -1, recordId: null, reason: `malformed job: ${problem}`, item: data },
            ]),
          );
        }
        throw new UnrecoverableError(error.message);
      }
      const result = await group.store(jobId, items);
      logger.debug(
        {
          jobId,
          records: items.length,
          stored: result.stored,
          deadLettered: result.deadLetters.length,
          bisections: result.bisections,
        },
        'records stored',
      );
      if (result.bisections > 0) {
        logger.warn(
          { jobId, bisections: result.bisections },
          'an insert failed on its data; the job was bisected to isolate the failing records',
        );
      }
      report(jobId, result.deadLetters);
      if (result.stored > 0) deps.onStored?.(result.stored);
      return result.deadLetters.length > 0
        ? { stored: result.stored, deadLettered: result.deadLetters.length }
        : { stored: result.stored };
    },
    { concurrency: deps.concurrency },
  );
  worker.on('failed', (job, error) => {
    if (error instanceof UnrecoverableError) return;
    logger.warn(
      { err: error, jobId: job?.id, attemptsMade: job?.attemptsMade },
      'records job failed; BullMQ retries it',
    );
  });
  worker.on('error', (error) => logger.error({ err: error }, 'records worker error'));
  return worker;
}
