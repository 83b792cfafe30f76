import { type BusDeps, createWorker, type TypedWorker } from '@streamanchor/bus';
import {
  type ReceiptAnchor,
  type ReceiptBatchJob,
  type ReceiptNoticeJob,
  type ReceiptRecord,
  splitReceipt,
} from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { SessionManager } from '../sessions';
import type { SessionCounters } from '../sessions/session';

/** Receipt jobs delivered at once. */
const RECEIPT_JOBS_IN_FLIGHT = 4;

/**
 * Consumes this relay's `receipts` queue (filled by the indexer) and sends each session its
 * records' receipts over its data channel (Session.deliverNotice: `receipts` or `anchoring`
 * messages under protocol v2, one `receipt` per record under v1). Receipts for sessions that
 * are gone are counted and dropped: the client can still fetch each one from the gateway,
 * with its current status, at `GET /v1/records/<recordId>/receipt` (docs/protocol.md §3.7).
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
      const notices =
        job.name === 'receiptNotice'
          ? [job.data as ReceiptNoticeJob]
          : noticesOfLegacyJob(job.data as ReceiptBatchJob);
      // Sessions side by side: one whose client reads slowly waits for its own buffer
      // (Session.deliverNotice) without holding the others. Each session's notices still
      // leave in the order they are handed over here, which is the order jobs start.
      const deliveries: Promise<number>[] = [];
      let records = 0;
      for (const { anchor, sessions } of notices) {
        for (const session of sessions) {
          records += session.records.length;
          deliveries.push(manager.deliverNotice(session.sessionId, anchor, session.records));
        }
      }
      const delivered = (await Promise.all(deliveries)).reduce((sum, n) => sum + n, 0);
      const undeliverable = records - delivered;
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

/**
 * A `receiptBatch` job (an older indexer's: one full receipt per record) as notices: its
 * receipts grouped by anchoring (batch and revision) and session, in order of appearance.
 */
export function noticesOfLegacyJob(data: ReceiptBatchJob): ReceiptNoticeJob[] {
  const notices = new Map<
    string,
    { anchor: ReceiptAnchor; sessions: Map<string, ReceiptRecord[]> }
  >();
  for (const { sessionId, receipt } of data.receipts) {
    const { anchor, record } = splitReceipt(receipt);
    const key = `${anchor.batchId}/${anchor.revision}`;
    let notice = notices.get(key);
    if (!notice) {
      notice = { anchor, sessions: new Map() };
      notices.set(key, notice);
    }
    const list = notice.sessions.get(sessionId);
    if (list) list.push(record);
    else notice.sessions.set(sessionId, [record]);
  }
  return [...notices.values()].map(({ anchor, sessions }) => ({
    anchor,
    sessions: [...sessions].map(([sessionId, records]) => ({ sessionId, records })),
  }));
}
