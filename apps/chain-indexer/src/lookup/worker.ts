import { TypeCompiler } from '@sinclair/typebox/compiler';
import { type BusDeps, createWorker, RemoteError, type TypedWorker } from '@streamanchor/bus';
import type { BatchLedger } from '@streamanchor/db';
import {
  LookupReceiptRequest,
  type LookupReceiptResult,
  SessionRecordsRequest,
  type SessionRecordsResult,
} from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';

export interface LookupWorkerDeps {
  bus: BusDeps;
  /** Lookups read, they never write. */
  ledger: Pick<BatchLedger, 'lookupRecord' | 'sessionRecordsOf'>;
  logger: Logger;
  /** Lookups answered at once (each is one or two indexed reads). */
  concurrency?: number;
}

export type LookupWorker = TypedWorker<'indexerLookup'>;

const DEFAULT_CONCURRENCY = 4;
const lookupReceiptCheck = TypeCompiler.Compile(LookupReceiptRequest);
const sessionRecordsCheck = TypeCompiler.Compile(SessionRecordsRequest);

/**
 * Answers the read-only requests of the `indexerLookup` queue (request/reply):
 * - `lookupReceipt` (the gateway): the ledger's view of one record: unknown, pending, or
 *   anchored with its current receipt; the caller decides what the subject may see;
 * - `sessionRecords` (a relay): one session's records of a batch with their proofs, for a
 *   receipt notice that carried only their number.
 * A malformed request fails with RemoteError `bad_request` (no retries). The worker runs from
 * creation until close().
 */
export function createLookupWorker({
  bus,
  ledger,
  logger,
  concurrency = DEFAULT_CONCURRENCY,
}: LookupWorkerDeps): LookupWorker {
  const worker = createWorker(
    bus,
    'indexerLookup',
    undefined,
    async (job): Promise<LookupReceiptResult | SessionRecordsResult> => {
      if (job.name === 'sessionRecords') {
        if (!sessionRecordsCheck.Check(job.data)) {
          throw new RemoteError('bad_request', 'not a sessionRecords request');
        }
        const { batchId, sessionId } = job.data;
        return { records: await ledger.sessionRecordsOf(batchId, sessionId) };
      }
      if (job.name !== 'lookupReceipt' || !lookupReceiptCheck.Check(job.data)) {
        throw new RemoteError('bad_request', `not a lookupReceipt request: ${job.name}`);
      }
      const lookup = await ledger.lookupRecord(job.data.recordId);
      if (lookup.state === 'unknown') return { state: 'unknown' };
      if (lookup.state === 'pending') return { state: 'pending', subject: lookup.subject };
      return { state: 'anchored', subject: lookup.subject, receipt: lookup.receipt };
    },
    { concurrency },
  );
  worker.on('failed', (job, err) => {
    if (!(err instanceof RemoteError))
      logger.error({ err, jobId: job?.id }, 'receipt lookup failed');
  });
  worker.on('error', (err) => logger.warn({ err }, 'lookup worker error'));
  return worker;
}
