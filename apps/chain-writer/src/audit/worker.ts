import { TypeCompiler } from '@sinclair/typebox/compiler';
import { type BusDeps, createWorker, type TypedWorker } from '@streamanchor/bus';
import { appendAudit, type Database } from '@streamanchor/db';
import {
  AuditEvent,
  type AuditEvent as AuditEventType,
  canonicalPayload,
  unstorableTextProblem,
  utf8Length,
} from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import { UnrecoverableError } from 'bullmq';
import type { Kysely } from 'kysely';
import { MalformedJobError } from '../errors';
import { type DeadLetter, insertDeadLetters } from '../ingest/dead-letters';

const auditEventCheck = TypeCompiler.Compile(AuditEvent);

/** Largest `details` of one event, as canonical JSON bytes. */
export const AUDIT_DETAILS_MAX_BYTES = 4096;

/** Why one item of an audit job cannot be appended, or undefined if it can. Never throws. */
export function auditEventProblem(item: unknown): string | undefined {
  if (!auditEventCheck.Check(item)) {
    const problems: string[] = [];
    for (const error of auditEventCheck.Errors(item)) {
      problems.push(`${error.path || '/'}: ${error.message}`);
      if (problems.length >= 3) break;
    }
    return `schema: ${problems.join('; ') || 'mismatch'}`;
  }
  const unstorable = unstorableTextProblem(item);
  if (unstorable) return `unstorable text: ${unstorable}`;
  let details: string;
  try {
    details = canonicalPayload(item.details ?? {});
  } catch (error) {
    return `details: ${(error as Error).message}`;
  }
  if (utf8Length(details) > AUDIT_DETAILS_MAX_BYTES) return 'details: too large';
  return undefined;
}

export interface AuditWorkerDeps {
  bus: BusDeps;
  db: Kysely<Database>;
  logger: Logger;
  /** Called with the dead letters a job wrote (counted with the records' ones). */
  onDeadLettered?: (letters: readonly DeadLetter[]) => void;
  /** Called after a job appended at least one entry. */
  onAppended?: (count: number) => void;
}

/**
 * The `audit` queue worker: appends each job's valid events to the audit hash chain
 * (`appendAudit`, idempotent on event ids) and dead-letters the others, in one transaction.
 */
export function createAuditWorker(deps: AuditWorkerDeps): TypedWorker<'audit'> {
  const logger = deps.logger.child({ subsystem: 'audit' });
  const worker = createWorker(
    deps.bus,
    'audit',
    undefined,
    async (job) => {
      const jobId = job.id ?? `(no id) ${job.name}`;
      const items = (job.data as { events?: unknown } | null)?.events;
      if (job.name !== 'auditEvents' || !Array.isArray(items) || items.length === 0) {
        const error = new MalformedJobError(
          job.id,
          job.name === 'auditEvents'
            ? 'events: expected a non-empty array'
            : `unknown job name ${job.name}`,
        );
        logger.error({ err: error, jobId: job.id, jobName: job.name }, error.shortMessage);
        throw new UnrecoverableError(error.message);
      }
      const valid: AuditEventType[] = [];
      const rejected: DeadLetter[] = [];
      items.forEach((item, index) => {
        const problem = auditEventProblem(item);
        if (problem === undefined) valid.push(item as AuditEventType);
        else {
          const eventId = (item as { eventId?: unknown } | null)?.eventId;
          rejected.push({
            itemIndex: index,
            recordId:
              typeof eventId === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(eventId) ? eventId : null,
            reason: problem,
            item,
          });
        }
      });
      const { appended, fresh } = await deps.db.transaction().execute(async (trx) => ({
        appended: valid.length > 0 ? (await appendAudit(trx, valid)).appended : 0,
        fresh: await insertDeadLetters(trx, 'audit', jobId, rejected),
      }));
      for (const letter of fresh) {
        logger.error(
          { jobId, itemIndex: letter.itemIndex, eventId: letter.recordId, reason: letter.reason },
          'ALERT: audit event dead-lettered (kept in dead_letters, not appended)',
        );
      }
      if (fresh.length > 0) deps.onDeadLettered?.(fresh);
      if (appended > 0) deps.onAppended?.(appended);
      logger.debug({ jobId, events: items.length, appended }, 'audit events appended');
      return fresh.length > 0 ? { appended, deadLettered: fresh.length } : { appended };
    },
    { concurrency: 1 },
  );
  worker.on('failed', (job, error) => {
    if (error instanceof UnrecoverableError) return;
    logger.warn(
      { err: error, jobId: job?.id, attemptsMade: job?.attemptsMade },
      'audit job failed; BullMQ retries it',
    );
  });
  worker.on('error', (error) => logger.error({ err: error }, 'audit worker error'));
  return worker;
}
