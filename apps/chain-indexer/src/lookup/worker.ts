import { TypeCompiler } from '@sinclair/typebox/compiler';
import {
  type BusDeps,
  createWorker,
  type JobResult,
  RemoteError,
  type TypedWorker,
} from '@streamanchor/bus';
import {
  type BatchLedger,
  batchLeafDetails,
  type Database,
  recordById,
  topicHead,
  topicRecordsAfter,
} from '@streamanchor/db';
import {
  BatchByIdRequest,
  type BatchByIdResult,
  type BatchLeaf,
  type Hex,
  HISTORY_LIMITS,
  LookupReceiptRequest,
  RecordByIdRequest,
  SessionRecordsRequest,
  type StoredRecord,
  type TopicHistoryRecord,
  TopicRecordsRequest,
  utf8Length,
} from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { Kysely } from 'kysely';

export interface LookupWorkerDeps {
  bus: BusDeps;
  /** Lookups read, they never write. */
  ledger: Pick<BatchLedger, 'lookupRecord' | 'sessionRecordsOf' | 'lookupBatch'>;
  /** Where history is read (a topic's records, one record, a batch's positions and payloads). */
  db: Kysely<Database>;
  logger: Logger;
  /** Lookups answered at once (each is one or two indexed reads). */
  concurrency?: number;
}

export type LookupWorker = TypedWorker<'indexerLookup'>;

const DEFAULT_CONCURRENCY = 4;
const lookupReceiptCheck = TypeCompiler.Compile(LookupReceiptRequest);
const sessionRecordsCheck = TypeCompiler.Compile(SessionRecordsRequest);
const topicRecordsCheck = TypeCompiler.Compile(TopicRecordsRequest);
const recordByIdCheck = TypeCompiler.Compile(RecordByIdRequest);
const batchByIdCheck = TypeCompiler.Compile(BatchByIdRequest);

/**
 * Answers the read-only requests of the `indexerLookup` queue (request/reply):
 * - `lookupReceipt` (the gateway): the ledger's view of one record: unknown, pending, or
 *   anchored with its current receipt; the caller decides what the subject may see;
 * - `sessionRecords` (a relay): one session's records of a batch with their proofs, for a
 *   receipt notice that carried only their number;
 * - `topicRecords` (the gateway, a relay catching a subscriber up): a topic's stored records
 *   after a position, and its head;
 * - `recordById` (the gateway): one stored record;
 * - `batchById` (the gateway): a batch's anchoring and a page of its leaves with proofs,
 *   positions and payloads.
 * History pages stop early once their payloads reach HISTORY_LIMITS.maxPagePayloadBytes. The
 * caller decides what the reader may see (grants). A malformed request fails with RemoteError
 * `bad_request` (no retries). The worker runs from creation until close().
 */
export function createLookupWorker({
  bus,
  ledger,
  db,
  logger,
  concurrency = DEFAULT_CONCURRENCY,
}: LookupWorkerDeps): LookupWorker {
  const worker = createWorker(
    bus,
    'indexerLookup',
    undefined,
    async (job): Promise<JobResult<'indexerLookup'>> => {
      switch (job.name) {
        case 'sessionRecords': {
          if (!sessionRecordsCheck.Check(job.data)) throw badRequest(job.name);
          const { batchId, sessionId } = job.data;
          return { records: await ledger.sessionRecordsOf(batchId, sessionId) };
        }
        case 'topicRecords': {
          if (!topicRecordsCheck.Check(job.data)) throw badRequest(job.name);
          const { topic, after, limit } = job.data;
          const rows = await topicRecordsAfter(db, { topic, after, limit });
          // Read after the records, so it is never below the last one's position.
          const head = await topicHead(db, topic);
          const records = withinPayloadBudget(rows).map(
            (row): TopicHistoryRecord => ({
              position: row.position,
              recordId: row.recordId as Hex,
              subject: row.subject,
              contentHash: row.contentHash as Hex,
              acceptedAt: row.acceptedAt,
              payload: row.payload,
              batchId: row.batchId as Hex | null,
            }),
          );
          return { records, head };
        }
        case 'recordById': {
          if (!recordByIdCheck.Check(job.data)) throw badRequest(job.name);
          const row = await recordById(db, job.data.recordId);
          if (!row) return { record: null };
          const record: StoredRecord = {
            recordId: row.recordId as Hex,
            topic: row.topic,
            position: row.position,
            subject: row.subject,
            contentHash: row.contentHash as Hex,
            acceptedAt: row.acceptedAt,
            payload: row.payload,
            batchId: row.batchId as Hex | null,
          };
          return { record };
        }
        case 'batchById': {
          if (!batchByIdCheck.Check(job.data)) throw badRequest(job.name);
          return batchPage(job.data);
        }
        case 'lookupReceipt': {
          if (!lookupReceiptCheck.Check(job.data)) throw badRequest(job.name);
          const lookup = await ledger.lookupRecord(job.data.recordId);
          if (lookup.state === 'unknown') return { state: 'unknown' };
          if (lookup.state === 'pending') return { state: 'pending', subject: lookup.subject };
          return { state: 'anchored', subject: lookup.subject, receipt: lookup.receipt };
        }
        default:
          throw new RemoteError('bad_request', `not a lookup request: ${job.name}`);
      }
    },
    { concurrency },
  );

  async function batchPage({
    batchId,
    from = 0,
    limit = HISTORY_LIMITS.defaultPageRecords,
    payloadTopics,
  }: BatchByIdRequest): Promise<BatchByIdResult> {
    const lookup = await ledger.lookupBatch(batchId, { from, limit });
    if (lookup.state !== 'anchored') return lookup;
    const details = await batchLeafDetails(db, {
      batchId,
      from,
      limit,
      ...(payloadTopics === undefined ? {} : { payloadTopics }),
    });
    const byRecord = new Map(details.map((detail) => [detail.recordId, detail]));
    const leaves = withinPayloadBudget(
      lookup.records.map((record): BatchLeaf => {
        const detail = byRecord.get(record.recordId);
        return {
          leafIndex: record.leafIndex,
          recordId: record.recordId,
          topic: record.topic,
          subject: record.subject,
          contentHash: record.contentHash,
          acceptedAt: record.acceptedAt,
          leafHash: record.leafHash,
          proof: record.proof,
          position: detail?.position ?? null,
          payload: detail?.payload ?? null,
        };
      }),
    );
    const end = from + leaves.length;
    return {
      state: 'anchored',
      anchor: lookup.anchor,
      leaves,
      next: end < lookup.leafCount ? end : null,
    };
  }

  worker.on('failed', (job, err) => {
    if (!(err instanceof RemoteError))
      logger.error({ err, jobId: job?.id, job: job?.name }, 'indexer lookup failed');
  });
  worker.on('error', (err) => logger.warn({ err }, 'lookup worker error'));
  return worker;
}

function badRequest(name: string): RemoteError {
  return new RemoteError('bad_request', `not a ${name} request`);
}

/**
 * The longest prefix of `items` whose payloads together stay within
 * HISTORY_LIMITS.maxPagePayloadBytes (UTF-8), and at least the first item.
 */
function withinPayloadBudget<T extends { payload: string | null }>(items: T[]): T[] {
  let bytes = 0;
  for (const [i, item] of items.entries()) {
    bytes += item.payload === null ? 0 : utf8Length(item.payload);
    if (bytes > HISTORY_LIMITS.maxPagePayloadBytes && i > 0) return items.slice(0, i);
  }
  return items;
}
