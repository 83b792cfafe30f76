import { TypeCompiler } from '@sinclair/typebox/compiler';
import { type BusDeps, createWorker, type TypedWorker } from '@streamanchor/bus';
import type { Database } from '@streamanchor/db';
import { RecordBatchJob } from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import { UnrecoverableError } from 'bullmq';
import type { Kysely } from 'kysely';
import { MalformedJobError } from '../errors';
import { type DeadLetter, insertDeadLetters } from './dead-letters';
import { type StoreJobResult, storeJobs } from './store';

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
 */
export function createGroupCommit(
  db: Kysely<Database>,
  maxRecords = GROUP_MAX_RECORDS,
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
          const results = await storeJobs(db, group);
          stats.groups += 1;
          stats.jobs += group.length;
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
  const group = createGroupCommit(deps.db);
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
