import { type Kysely, sql } from 'kysely';
import type { Database } from './schema';

/**
 * The columns of a stored record that history reads give (from the view `record_leaves`:
 * the record and its batch, if any).
 */
const STORED_RECORD_COLUMNS = [
  'position',
  'record_id',
  'topic',
  'subject',
  'content_hash',
  'accepted_at',
  'payload',
  'batch_id',
] as const;

export interface TopicRecord {
  /** Its position in the topic (1, 2, 3… in ack order). */
  position: number;
  recordId: string;
  topic: string;
  subject: string;
  contentHash: string;
  acceptedAt: number;
  /** The record's canonical JSON text; null once pruned (payload retention). */
  payload: string | null;
  /** The batch it was anchored in; null while it waits for one. */
  batchId: string | null;
}

export interface TopicRecordsQuery {
  topic: string;
  /** The position the reader has; records after it are read (0: from the start). */
  after: number;
  /** Most records read. */
  limit: number;
}

/**
 * The records of `topic` after position `after`, in position order, at most `limit` (one
 * range scan of `records_topic_position`, each record's batch looked up by its leaf). Records without a position are never read.
 * Positions repeat only after a Redis reset (see migration 0007): repeated ones come in
 * ingest order.
 */
export async function topicRecordsAfter(
  db: Kysely<Database>,
  { topic, after, limit }: TopicRecordsQuery,
): Promise<TopicRecord[]> {
  if (!Number.isSafeInteger(after) || after < 0) {
    throw new RangeError(`after must be a non-negative integer, not ${after}`);
  }
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`limit must be a positive integer, not ${limit}`);
  }
  const rows = await db
    .selectFrom('record_leaves')
    .select(STORED_RECORD_COLUMNS)
    .where('topic', '=', topic)
    .where('position', '>', after)
    .orderBy('position')
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    // Never null here (`position > after`); bigint columns come back as strings from pg.
    position: Number(row.position),
    recordId: row.record_id,
    topic: row.topic,
    subject: row.subject,
    contentHash: row.content_hash,
    acceptedAt: Number(row.accepted_at),
    payload: row.payload,
    batchId: row.batch_id,
  }));
}

/** The highest position stored for `topic`, or 0 when it has none. */
export async function topicHead(db: Kysely<Database>, topic: string): Promise<number> {
  const row = await db
    .selectFrom('records')
    .select(sql<string | number | null>`max(position)`.as('head'))
    .where('topic', '=', topic)
    .executeTakeFirst();
  return Number(row?.head ?? 0);
}

/**
 * The positions of a batch's records, per topic, ascending (records without a position
 * left out): what a `batch` notice to a topic's subscribers names.
 */
export async function batchTopicPositions(
  db: Kysely<Database>,
  batchId: string,
): Promise<Map<string, number[]>> {
  const rows = await db
    .selectFrom('record_leaves')
    .select(['topic', 'position'])
    .where('batch_id', '=', batchId)
    .where('position', 'is not', null)
    .orderBy('topic')
    .orderBy('position')
    .execute();
  const byTopic = new Map<string, number[]>();
  for (const row of rows) {
    let list = byTopic.get(row.topic);
    if (!list) {
      list = [];
      byTopic.set(row.topic, list);
    }
    list.push(Number(row.position));
  }
  return byTopic;
}

/** One stored record, with its position (null when it has none: see migration 0007). */
export interface StoredRecordRow extends Omit<TopicRecord, 'position'> {
  position: number | null;
}

/** The stored record `recordId`, or undefined when none is. */
export async function recordById(
  db: Kysely<Database>,
  recordId: string,
): Promise<StoredRecordRow | undefined> {
  const row = await db
    .selectFrom('record_leaves')
    .select(STORED_RECORD_COLUMNS)
    .where('record_id', '=', recordId)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    position: row.position == null ? null : Number(row.position),
    recordId: row.record_id,
    topic: row.topic,
    subject: row.subject,
    contentHash: row.content_hash,
    acceptedAt: Number(row.accepted_at),
    payload: row.payload,
    batchId: row.batch_id,
  };
}

/** What a batch's leaf page adds to the leaves (which the ledger reads): position, payload. */
export interface BatchLeafDetails {
  leafIndex: number;
  recordId: string;
  topic: string;
  position: number | null;
  payload: string | null;
}

/**
 * The position and payload of the records of batch `batchId` at leaf indexes `from` to
 * `from + limit − 1`, in leaf order (one range scan of `batch_leaves_pkey`). Only the records of
 * `payloadTopics` (names, or `*`; absent: all) carry their payload; the others have null.
 */
export async function batchLeafDetails(
  db: Kysely<Database>,
  {
    batchId,
    from,
    limit,
    payloadTopics,
  }: { batchId: string; from: number; limit: number; payloadTopics?: readonly string[] },
): Promise<BatchLeafDetails[]> {
  const all = payloadTopics === undefined || payloadTopics.includes('*');
  const granted = all ? [] : [...payloadTopics];
  const rows = await db
    .selectFrom('record_leaves')
    .select((eb) => [
      'leaf_index',
      'record_id',
      'topic',
      'position',
      // Payloads not asked for are not read (nor detoasted).
      all
        ? eb.ref('payload').as('payload')
        : granted.length > 0
          ? eb
              .case()
              .when('topic', 'in', granted)
              .then(eb.ref('payload'))
              .else(sql<null>`null`)
              .end()
              .as('payload')
          : sql<string | null>`null::text`.as('payload'),
    ])
    .where('batch_id', '=', batchId)
    .where('leaf_index', '>=', from)
    .where('leaf_index', '<', from + limit)
    .orderBy('leaf_index')
    .execute();
  return rows.map((row) => ({
    leafIndex: row.leaf_index ?? -1,
    recordId: row.record_id,
    topic: row.topic,
    position: row.position == null ? null : Number(row.position),
    payload: row.payload ?? null,
  }));
}
