import { TypeCompiler } from '@sinclair/typebox/compiler';
import { type BusDeps, createWorker, type TypedWorker } from '@streamanchor/bus';
import type { Database } from '@streamanchor/db';
import { RecordBatchJob } from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import { UnrecoverableError } from 'bullmq';
import type { Kysely } from 'kysely';
import { MalformedJobError } from '../errors';
import { storeRecords } from './store';

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
}

/**
 * The `records` queue worker: validates each job, stores its records exactly once and
 * returns `{ stored }` (new rows). A malformed job fails at once (no retries) and is logged
 * at error level; it never touches the database.
 */
export function createIngestWorker(deps: IngestDeps): TypedWorker<'records'> {
  const logger = deps.logger.child({ subsystem: 'ingest' });
  const worker = createWorker(
    deps.bus,
    'records',
    undefined,
    async (job) => {
      const problem = recordBatchJobProblem(job.data);
      if (job.name !== 'recordBatch' || problem !== undefined) {
        const error = new MalformedJobError(job.id, problem ?? `unknown job name ${job.name}`);
        logger.error(
          { err: error, jobId: job.id, jobName: job.name, details: error.details },
          error.shortMessage,
        );
        throw new UnrecoverableError(error.message);
      }
      const { records } = job.data;
      const stored = await storeRecords(deps.db, records);
      logger.debug({ jobId: job.id, records: records.length, stored }, 'records stored');
      if (stored > 0) deps.onStored?.(stored);
      return { stored };
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
