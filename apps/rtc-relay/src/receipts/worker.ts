import { setImmediate as nextTurn } from 'node:timers/promises';
import { type BusDeps, createWorker, type TypedWorker } from '@streamanchor/bus';
import type { Logger } from '@streamanchor/service-kit';
import type { SessionManager } from '../sessions';
import type { SessionCounters } from '../sessions/session';

/** Receipts sent in one turn of the event loop. */
const RECEIPTS_PER_TURN = 32;

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
  const worker = createWorker(bus, 'receipts', relayId, async (job) => {
    let delivered = 0;
    const { receipts } = job.data;
    for (let i = 0; i < receipts.length; i++) {
      // A job holds up to a thousand receipts: hand the event loop back between slices, so
      // that publishes arriving meanwhile are acked without waiting for the whole job.
      if (i > 0 && i % RECEIPTS_PER_TURN === 0) await nextTurn();
      const { sessionId, receipt } = receipts[i]!;
      if (manager.deliverReceipt(sessionId, receipt)) delivered += 1;
    }
    const undeliverable = receipts.length - delivered;
    counters.receiptsDelivered += delivered;
    counters.receiptsUndeliverable += undeliverable;
    if (undeliverable > 0)
      logger.debug({ jobId: job.id, undeliverable }, 'receipts for sessions no longer here');
    return { delivered };
  });
  worker.on('error', (error) => logger.warn({ err: error }, 'receipts worker error'));
  worker.on('failed', (job, error) =>
    logger.warn({ jobId: job?.id, err: error }, 'receipt job failed'),
  );
  return worker;
}
