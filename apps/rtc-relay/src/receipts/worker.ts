import { type BusDeps, createWorker, type TypedWorker } from '@streamanchor/bus';
import type { Receipt } from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { SessionManager } from '../sessions';
import type { SessionCounters } from '../sessions/session';

/** Receipt jobs delivered at once. */
const RECEIPT_JOBS_IN_FLIGHT = 4;

/**
 * Consumes this relay's `receipts` queue (filled by the indexer) and sends each receipt
 * over its session's data channel. Receipts for sessions that are gone are counted and
 * dropped: the client can still fetch each one from the gateway, with its current status,
 * at `GET /v1/records/<recordId>/receipt` (docs/protocol.md §3.7).
 */
export function createReceiptsWorker({
  bus,
  relayId,
  manager,
  counters,
  logger,
}: {
  bus: BusDeps;
  relayId: string;
  manager: SessionManager;
  counters: SessionCounters;
  logger: Logger;
}): TypedWorker<'receipts'> {
  const worker = createWorker(
    bus,
    'receipts',
    relayId,
    async (job) => {
      // Each session's receipts in order, the sessions side by side: one whose client reads
      // slowly waits for its own buffer (Session.deliverReceipts) without holding the others.
      const bySession = new Map<string, Receipt[]>();
      for (const { sessionId, receipt } of job.data.receipts) {
        const list = bySession.get(sessionId);
        if (list) list.push(receipt);
        else bySession.set(sessionId, [receipt]);
      }
      const counts = await Promise.all(
        [...bySession].map(([sessionId, list]) => manager.deliverReceipts(sessionId, list)),
      );
      const delivered = counts.reduce((sum, n) => sum + n, 0);
      const undeliverable = job.data.receipts.length - delivered;
      counters.receiptsDelivered += delivered;
      counters.receiptsUndeliverable += undeliverable;
      if (undeliverable > 0)
        logger.debug({ jobId: job.id, undeliverable }, 'receipts for sessions no longer here');
      return { delivered };
    },
    // Jobs side by side too, so one waiting on a slow client does not hold up the next.
    { concurrency: RECEIPT_JOBS_IN_FLIGHT },
  );
  worker.on('error', (error) => logger.warn({ err: error }, 'receipts worker error'));
  worker.on('failed', (job, error) =>
    logger.warn({ jobId: job?.id, err: error }, 'receipt job failed'),
  );
  return worker;
}
