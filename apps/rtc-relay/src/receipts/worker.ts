import {
  type BusDeps,
  createWorker,
  type IndexerClient,
  type TypedWorker,
} from '@streamanchor/bus';
import {
  type ReceiptAnchor,
  type ReceiptBatchJob,
  type ReceiptNoticeJob,
  type ReceiptRecord,
  splitReceipt,
} from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { SessionManager } from '../sessions';
import type { NoticePart, SessionCounters } from '../sessions/session';

/** Receipt jobs delivered at once. */
const RECEIPT_JOBS_IN_FLIGHT = 4;

/**
 * Consumes this relay's `receipts` queue (filled by the indexer) and sends each session its
 * records' receipts over its data channel (Session.deliverNotice: `receipts` or `anchoring`
 * messages under protocol v2, one `receipt` per record under v1). A notice that gives a
 * session only its number of records (every one after a batch's first) is an `anchoring`
 * message for a v2 session that has them; any other session has its records asked of the
 * indexer (`indexer.sessionRecords`). Receipts for sessions that are gone, or whose records
 * the indexer did not give, are counted and dropped: the client can still fetch each one
 * from the gateway, with its current status, at `GET /v1/records/<recordId>/receipt`
 * (docs/protocol.md §3.7).
 */
export function createReceiptsWorker({
  bus,
  relayId,
  manager,
  indexer,
  counters,
  logger,
}: {
  bus: BusDeps;
  relayId: string;
  manager: SessionManager;
  indexer: Pick<IndexerClient, 'sessionRecords'>;
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
          const { sessionId } = session;
          let part: NoticePart;
          if ('records' in session) {
            part = { records: session.records };
            records += session.records.length;
          } else {
            part = {
              recordCount: session.recordCount,
              fetch: async () => {
                try {
                  return (await indexer.sessionRecords(anchor.batchId, sessionId)).records;
                } catch (error) {
                  logger.warn(
                    { err: error, batchId: anchor.batchId, sessionId },
                    'could not get a session records of a batch from the indexer; its receipts are not sent',
                  );
                  return [];
                }
              },
            };
            records += session.recordCount;
          }
          deliveries.push(manager.deliverNotice(sessionId, anchor, part));
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
