import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { DatabaseHandle } from './database';
import {
  batchLeafDetails,
  batchTopicPositions,
  recordById,
  topicHead,
  topicRecordsAfter,
} from './history';
import { createBatchLedger } from './ledger';
import type { NewRecordRow } from './schema';
import { createTestDatabase, TEST_DATABASE_KINDS } from './testing';

const hex = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;

/** A stored record of `topic` at `position` (null: none); record ids follow `n`. */
const row = (n: number, topic: string, position: number | null): NewRecordRow => ({
  record_id: hex(n),
  topic,
  subject: `sub-${n}`,
  content_hash: hex(1000 + n),
  accepted_at: 1_700_000_000_000 + n,
  payload: `{"n":${n}}`,
  relay_id: 'relay-1',
  session_id: 'AAAAAAAAAAAAAAAAAAAAAA',
  position,
});

describe.each(TEST_DATABASE_KINDS)('topic history on %s', (kind) => {
  let handle: DatabaseHandle;
  beforeEach(async () => {
    handle = await createTestDatabase(kind);
  });
  afterEach(() => handle.close());

  /** A built batch `batchId` of the records `hex(n)` at their leaf indexes (made-up hashes). */
  const stamp = (
    batchId: string,
    merkleRoot: string,
    recordCount: number,
    leaves: readonly (readonly [n: number, leafIndex: number, leafHash: string])[],
    contract = `0x${'ab'.repeat(20)}`,
  ) =>
    handle.db.transaction().execute((trx) =>
      createBatchLedger(trx, { chainId: 31337, contract, finalityDepth: 1 }).createBatch(
        { batchId, merkleRoot, recordCount },
        leaves.map(([n, leafIndex, leafHash]) => ({ recordId: hex(n), leafIndex, leafHash })),
      ),
    );

  const positionsAfter = async (topic: string, after: number, limit: number) =>
    (await topicRecordsAfter(handle.db, { topic, after, limit })).map((r) => r.position);

  test('default: a topic’s records after a position, in position order, paged by limit', async () => {
    // Stored out of position order (groups from two relays), interleaved with another topic
    // and with records that have no position.
    await handle.db
      .insertInto('records')
      .values([
        row(1, 'a', 3),
        row(2, 'b', 1),
        row(3, 'a', 1),
        row(4, 'a', null),
        row(5, 'a', 2),
        row(6, 'a', 5),
        row(7, 'a', 4),
        row(8, 'b', 2),
      ])
      .execute();
    await stamp(hex(900), hex(901), 1, [[3, 0, hex(902)]]);

    const first = await topicRecordsAfter(handle.db, { topic: 'a', after: 0, limit: 2 });
    expect(first).toEqual([
      {
        position: 1,
        recordId: hex(3),
        topic: 'a',
        subject: 'sub-3',
        contentHash: hex(1003),
        acceptedAt: 1_700_000_000_003,
        payload: '{"n":3}',
        batchId: hex(900),
      },
      {
        position: 2,
        recordId: hex(5),
        topic: 'a',
        subject: 'sub-5',
        contentHash: hex(1005),
        acceptedAt: 1_700_000_000_005,
        payload: '{"n":5}',
        batchId: null,
      },
    ]);
    expect(await positionsAfter('a', 2, 2)).toEqual([3, 4]);
    expect(await positionsAfter('a', 4, 2)).toEqual([5]);
    expect(await positionsAfter('a', 5, 2)).toEqual([]);
    expect(await positionsAfter('a', 0, 100)).toEqual([1, 2, 3, 4, 5]);
    expect(await positionsAfter('b', 0, 100)).toEqual([1, 2]);
    expect(await positionsAfter('none', 0, 100)).toEqual([]);
  });

  test('behavior: topicHead is a topic’s highest stored position, 0 without one', async () => {
    await handle.db
      .insertInto('records')
      .values([
        row(1, 'a', 7),
        row(2, 'a', 12),
        row(3, 'a', null),
        row(4, 'b', 3),
        row(5, 'c', null),
      ])
      .execute();
    expect(await topicHead(handle.db, 'a')).toBe(12);
    expect(await topicHead(handle.db, 'b')).toBe(3);
    expect(await topicHead(handle.db, 'c')).toBe(0);
    expect(await topicHead(handle.db, 'none')).toBe(0);
  });

  test('behavior: a position repeated (a Redis reset) is stored and read in ingest order', async () => {
    await handle.db
      .insertInto('records')
      .values([row(1, 'a', 1), row(2, 'a', 2), row(3, 'a', 1), row(4, 'a', 2)])
      .execute();
    expect(
      (await topicRecordsAfter(handle.db, { topic: 'a', after: 0, limit: 10 })).map((r) => [
        r.position,
        r.recordId,
      ]),
    ).toEqual([
      [1, hex(1)],
      [1, hex(3)],
      [2, hex(2)],
      [2, hex(4)],
    ]);
    expect(await topicHead(handle.db, 'a')).toBe(2);
  });

  test('behavior: both reads scan records_topic_position', async () => {
    await handle.db
      .insertInto('records')
      .values(Array.from({ length: 50 }, (_, i) => row(i + 1, i % 2 ? 'a' : 'b', i + 1)))
      .execute();
    await sql`analyze records`.execute(handle.db);
    const scans = await handle.db.transaction().execute(async (trx) => {
      // A tiny table: without this the planner would rightly read its one page instead.
      await sql`set local enable_seqscan = off`.execute(trx);
      const read = await topicRecordsAfter(trx, { topic: 'a', after: 10, limit: 3 });
      const head = await topicHead(trx, 'a');
      const { rows } = await sql<{ scans: number }>`
        select pg_stat_get_xact_numscans('records_topic_position'::regclass)::int as scans`.execute(
        trx,
      );
      return { positions: read.map((r) => r.position), head, scans: rows[0]?.scans };
    });
    expect(scans).toEqual({ positions: [12, 14, 16], head: 50, scans: 2 });
  });

  test('behavior: batchTopicPositions gives a batch’s positions per topic, ascending, without the unpositioned', async () => {
    const rows = [
      row(1, 'a', 9),
      row(2, 'b', 4),
      row(3, 'a', 7),
      row(4, 'a', null),
      row(5, 'c', 1),
    ];
    await handle.db.insertInto('records').values(rows).execute();
    // The first four in the batch; the fifth in none.
    await stamp(
      hex(99),
      hex(98),
      5,
      [1, 2, 3, 4].map((n, i) => [n, i, hex(950 + n)] as const),
      `0x${'77'.repeat(20)}`,
    );
    expect(await batchTopicPositions(handle.db, hex(99))).toEqual(
      new Map([
        ['a', [7, 9]],
        ['b', [4]],
      ]),
    );
    expect(await batchTopicPositions(handle.db, hex(100))).toEqual(new Map());
  });

  test('behavior: recordById gives one record with its position (null when none) and batch', async () => {
    await handle.db
      .insertInto('records')
      .values([row(1, 'a', 7), row(2, 'b', null)])
      .execute();
    expect(await recordById(handle.db, hex(1))).toEqual({
      position: 7,
      recordId: hex(1),
      topic: 'a',
      subject: 'sub-1',
      contentHash: hex(1001),
      acceptedAt: 1_700_000_000_001,
      payload: '{"n":1}',
      batchId: null,
    });
    expect(await recordById(handle.db, hex(2))).toMatchObject({ position: null, topic: 'b' });
    expect(await recordById(handle.db, hex(3))).toBeUndefined();
  });

  test('behavior: batchLeafDetails pages a batch in leaf order, with the payloads of the topics asked for', async () => {
    await handle.db
      .insertInto('records')
      .values([row(1, 'a', 1), row(2, 'b', 1), row(3, 'a', 2), row(4, 'c', null), row(5, 'a', 3)])
      .execute();
    // Leaf order differs from ingest order.
    await stamp(
      hex(900),
      hex(901),
      5,
      (
        [
          [1, 4],
          [2, 0],
          [3, 2],
          [4, 1],
          [5, 3],
        ] as const
      ).map(([n, leafIndex]) => [n, leafIndex, hex(950 + n)] as const),
    );
    const page = (from: number, limit: number, payloadTopics?: string[]) =>
      batchLeafDetails(handle.db, { batchId: hex(900), from, limit, payloadTopics });

    expect(await page(0, 2)).toEqual([
      { leafIndex: 0, recordId: hex(2), topic: 'b', position: 1, payload: '{"n":2}' },
      { leafIndex: 1, recordId: hex(4), topic: 'c', position: null, payload: '{"n":4}' },
    ]);
    expect((await page(2, 10)).map((d) => d.leafIndex)).toEqual([2, 3, 4]);
    expect((await page(5, 10)).map((d) => d.leafIndex)).toEqual([]);
    expect((await page(0, 5, ['a'])).map((d) => [d.topic, d.payload])).toEqual([
      ['b', null],
      ['c', null],
      ['a', '{"n":3}'],
      ['a', '{"n":5}'],
      ['a', '{"n":1}'],
    ]);
    expect((await page(0, 5, ['a', 'c'])).filter((d) => d.payload !== null)).toHaveLength(4);
    expect((await page(0, 5, ['*'])).every((d) => d.payload !== null)).toBe(true);
    expect((await page(0, 5, [])).every((d) => d.payload === null)).toBe(true);
    expect(await batchLeafDetails(handle.db, { batchId: hex(999), from: 0, limit: 5 })).toEqual([]);
  });

  test('error: a negative or fractional position, or a limit below 1, is refused', async () => {
    await expect(topicRecordsAfter(handle.db, { topic: 'a', after: -1, limit: 5 })).rejects.toThrow(
      'after must be a non-negative integer, not -1',
    );
    await expect(
      topicRecordsAfter(handle.db, { topic: 'a', after: 1.5, limit: 5 }),
    ).rejects.toThrow('after must be a non-negative integer, not 1.5');
    await expect(topicRecordsAfter(handle.db, { topic: 'a', after: 0, limit: 0 })).rejects.toThrow(
      'limit must be a positive integer, not 0',
    );
  });
});
