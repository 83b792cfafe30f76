import { buildMerkleTree, type Hex, loadProofVerifier } from '@streamanchor/protocol';
import { type Kysely, Migrator, sql } from 'kysely';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { type DatabaseHandle, openDatabase } from './database';
import { batchLeafDetails, batchTopicPositions, recordById, topicRecordsAfter } from './history';
import {
  createBatchLedger,
  readBatchContent,
  readWaitingRecords,
  takeUnbatchedRecords,
} from './ledger';
import { migrations } from './migrations/index';
import type { Database } from './schema';
import {
  createTestDatabase,
  createThrowawayPostgres,
  TEST_DATABASE_KINDS,
  type TestDatabaseKind,
} from './testing';

const hex = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
const scope = { chainId: 31337, contract: `0x${'ab'.repeat(20)}`, finalityDepth: 3 };

/** Record `hex(n)`: topic `a` or `b` by parity, position n (none for multiples of 5). */
const recordOf = (n: number) => ({
  record_id: hex(n),
  topic: n % 2 ? 'a' : 'b',
  subject: `sub-${n}`,
  content_hash: hex(5000 + n),
  accepted_at: 1_700_000_000_000 + n,
  payload: `{"n":${n}}`,
  relay_id: 'relay-1',
  session_id: n % 3 ? 'AAAAAAAAAAAAAAAAAAAAAA' : 'BBBBBBBBBBBBBBBBBBBBBB',
  position: n % 5 ? n : null,
});

const insertRecords = (db: Kysely<Database>, ns: readonly number[]) =>
  db.insertInto('records').values(ns.map(recordOf)).execute();

/** A database migrated up to `to` only, and a way to run the rest. */
async function openAt(kind: TestDatabaseKind, to: string) {
  let handle: DatabaseHandle;
  let drop = async () => {};
  if (kind === 'pglite') {
    handle = await openDatabase({ pgliteDir: 'memory://', pgliteVacuumMs: 0 });
  } else {
    const postgres = await createThrowawayPostgres('test');
    handle = await openDatabase({ databaseUrl: postgres.url, pgliteDir: 'unused', poolSize: 4 });
    drop = postgres.drop;
  }
  const migrator = new Migrator({
    db: handle.db,
    provider: { getMigrations: async () => migrations },
  });
  const check = ({ error }: { error?: unknown }) => {
    if (error) throw error;
  };
  check(await migrator.migrateTo(to));
  return {
    db: handle.db,
    latest: async () => check(await migrator.migrateToLatest()),
    down: async () => check(await migrator.migrateDown()),
    close: async () => {
      await handle.close();
      await drop();
    },
  };
}

/** Cuts one batch the way the writer does: the oldest waiting records, in one transaction. */
async function cut(db: Kysely<Database>, limit: number, batchByte: number) {
  return db.transaction().execute(async (trx) => {
    const rows = await takeUnbatchedRecords(trx, { limit });
    if (rows.length === 0) return [];
    const tree = await buildMerkleTree(
      rows.map((row) => ({
        recordId: row.record_id as Hex,
        topic: row.topic,
        subject: row.subject,
        contentHash: row.content_hash as Hex,
        acceptedAt: Number(row.accepted_at),
      })),
    );
    await createBatchLedger(trx, scope).createBatch(
      { batchId: hex(batchByte), merkleRoot: tree.root, recordCount: rows.length },
      rows.map((row, leafIndex) => ({
        recordId: row.record_id,
        leafIndex,
        leafHash: tree.leafHashes[leafIndex]!,
      })),
    );
    return rows.map((row) => row.record_id);
  });
}

const waiting = (db: Kysely<Database>) =>
  db.transaction().execute((trx) => readWaitingRecords(trx, { limit: 1000 }));
const frontier = async (db: Kysely<Database>) =>
  Number(
    (await db.selectFrom('batch_frontier').select('frontier_seq').executeTakeFirstOrThrow())
      .frontier_seq,
  );
/** record_id → batch_id and leaf index, for every record, in seq order. */
const membership = async (db: Kysely<Database>) =>
  (
    await db
      .selectFrom('record_leaves')
      .select(['record_id', 'batch_id', 'leaf_index'])
      .orderBy('seq')
      .execute()
  ).map((row) => [row.record_id, row.batch_id, row.leaf_index]);

describe.each(TEST_DATABASE_KINDS)('migration 0010 (batch leaves) on %s', (kind) => {
  let at: Awaited<ReturnType<typeof openAt>>;
  beforeEach(async () => {
    at = await openAt(kind, '0009_indexer_leaders');
  });
  afterEach(() => at.close());

  /** Stamps records as the ledger did before 0010: a batch row, then an UPDATE of the records. */
  async function stampOld(batchByte: number, ns: readonly number[]) {
    const rows = ns.map(recordOf);
    const tree = await buildMerkleTree(
      rows.map((row) => ({
        recordId: row.record_id as Hex,
        topic: row.topic,
        subject: row.subject,
        contentHash: row.content_hash as Hex,
        acceptedAt: row.accepted_at,
      })),
    );
    await sql`insert into batches (batch_id, status, merkle_root, record_count, chain_id, contract)
      values (${hex(batchByte)}, 'built', ${tree.root}, ${rows.length}, ${scope.chainId}, ${scope.contract})`.execute(
      at.db,
    );
    const stamps = JSON.stringify(
      rows.map((row, i) => ({
        record_id: row.record_id,
        leaf_index: i,
        leaf_hash: tree.leafHashes[i],
      })),
    );
    await sql`update records as r
         set batch_id = ${hex(batchByte)}, leaf_index = v.leaf_index, leaf_hash = v.leaf_hash
        from jsonb_to_recordset(${stamps}::jsonb) as v(record_id text, leaf_index integer, leaf_hash text)
       where r.record_id = v.record_id and r.batch_id is null`.execute(at.db);
    return tree;
  }

  const oldStamps = () =>
    sql<{ record_id: string; batch_id: string | null; leaf_index: number | null }>`
      select record_id, batch_id, leaf_index, leaf_hash from records order by seq`.execute(at.db);

  /** What the reads gave before 0010 (their SQL then), for comparison with the new code's. */
  async function oldReads() {
    const content = async (batchId: string) =>
      (
        await sql`select record_id, topic, subject, content_hash, accepted_at, leaf_index, leaf_hash,
                         relay_id, session_id
                    from records where batch_id = ${batchId} order by leaf_index`.execute(at.db)
      ).rows;
    const topic = async (name: string) =>
      (
        await sql<Record<string, unknown>>`
          select position, record_id, topic, subject, content_hash, accepted_at, payload, batch_id
            from records where topic = ${name} and position > 0 order by position, seq limit 100`.execute(
          at.db,
        )
      ).rows;
    const positions = async (batchId: string) =>
      (
        await sql<{ topic: string; position: string | number }>`
          select topic, position from records where batch_id = ${batchId} and position is not null
           order by topic, position`.execute(at.db)
      ).rows;
    const details = async (batchId: string) =>
      (
        await sql<Record<string, unknown>>`
          select leaf_index, record_id, topic, position, payload from records
           where batch_id = ${batchId} and leaf_index >= 1 and leaf_index < 4 order by leaf_index`.execute(
          at.db,
        )
      ).rows;
    return {
      content: [await content(hex(1)), await content(hex(2))],
      topics: [await topic('a'), await topic('b')],
      positions: [await positions(hex(1)), await positions(hex(2))],
      details: [await details(hex(1)), await details(hex(2))],
    };
  }

  test('behavior: stamped records move into batch_leaves as they were; reads give what they gave before', async () => {
    // Records 1–12; batch 1 takes 1–5, batch 2 takes 8, 6, 9, 7 (leaf order not seq order);
    // 10–12 wait.
    await insertRecords(at.db, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const trees = [await stampOld(1, [1, 2, 3, 4, 5]), await stampOld(2, [8, 6, 9, 7])];
    const before = (await oldStamps()).rows;
    const reads = await oldReads();

    await at.latest();

    // The same batch, leaf index and leaf hash for every record.
    const after = await sql`
      select record_id, batch_id, leaf_index, leaf_hash from record_leaves order by seq`.execute(
      at.db,
    );
    expect(after.rows).toEqual(before);
    expect(before.filter((row) => row.batch_id === hex(2)).map((row) => row.leaf_index)).toEqual([
      1, 3, 0, 2,
    ]);
    const leaves = await at.db
      .selectFrom('batch_leaves')
      .select(['batch_seq', 'leaf_index', 'record_seq'])
      .orderBy('batch_seq')
      .orderBy('leaf_index')
      .execute();
    expect(leaves.map((l) => [Number(l.batch_seq), l.leaf_index, Number(l.record_seq)])).toEqual([
      [1, 0, 1],
      [1, 1, 2],
      [1, 2, 3],
      [1, 3, 4],
      [1, 4, 5],
      [2, 0, 8],
      [2, 1, 6],
      [2, 2, 9],
      [2, 3, 7],
    ]);
    const columns = await sql<{ column_name: string }>`
      select column_name from information_schema.columns
       where table_name = 'records' and column_name in ('batch_id', 'leaf_index', 'leaf_hash')`.execute(
      at.db,
    );
    expect(columns.rows).toEqual([]);
    // Every record up to 9 is batched; 10 is the first waiting.
    expect(await frontier(at.db)).toBe(9);

    // The reads, now through batch_leaves, give what the old SQL gave.
    for (const [i, batchId] of [hex(1), hex(2)].entries()) {
      const content = await readBatchContent(at.db, batchId);
      expect(content.merkleRoot).toBe(trees[i]!.root);
      expect(content.rows.map(({ proof: _, ...row }) => row)).toEqual(reads.content[i]);
      for (const [leaf, row] of content.rows.entries()) {
        expect(row.proof).toEqual(trees[i]!.proof(leaf));
      }
      expect(await batchTopicPositions(at.db, batchId)).toEqual(
        reads.positions[i]!.reduce((byTopic, { topic, position }) => {
          byTopic.set(topic, [...(byTopic.get(topic) ?? []), Number(position)]);
          return byTopic;
        }, new Map<string, number[]>()),
      );
      expect(await batchLeafDetails(at.db, { batchId, from: 1, limit: 3 })).toEqual(
        reads.details[i]!.map((row) => ({
          leafIndex: row.leaf_index,
          recordId: row.record_id,
          topic: row.topic,
          position: row.position == null ? null : Number(row.position),
          payload: row.payload,
        })),
      );
    }
    for (const [i, topic] of ['a', 'b'].entries()) {
      expect(await topicRecordsAfter(at.db, { topic, after: 0, limit: 100 })).toEqual(
        reads.topics[i]!.map((row) => ({
          position: Number(row.position),
          recordId: row.record_id,
          topic: row.topic,
          subject: row.subject,
          contentHash: row.content_hash,
          acceptedAt: Number(row.accepted_at),
          payload: row.payload,
          batchId: row.batch_id,
        })),
      );
    }
    expect(await recordById(at.db, hex(6))).toMatchObject({ batchId: hex(2), position: 6 });
    expect(await recordById(at.db, hex(10))).toMatchObject({ batchId: null, position: null });
    const ledger = createBatchLedger(at.db, scope);
    await ledger.markIncluded(
      [{ batchId: hex(2), txHash: hex(70), blockNumber: 10n, blockHash: hex(80), logIndex: 0 }],
      10n,
    );
    const found = await ledger.lookupRecord(hex(9));
    expect(found).toMatchObject({
      state: 'anchored',
      receipt: {
        batchId: hex(2),
        leafIndex: 2,
        leafHash: trees[1]!.leafHashes[2],
        proof: trees[1]!.proof(2),
        merkleRoot: trees[1]!.root,
      },
    });
    if (found.state !== 'anchored') throw new Error('not anchored');
    expect((await loadProofVerifier())(found.receipt)).toBe(true);

    // The waiting records are the batcher's next batch, in seq order.
    expect(await cut(at.db, 100, 3)).toEqual([hex(10), hex(11), hex(12)]);
  });

  test('behavior: migrating down puts every stamp back on its record and the old indexes back', async () => {
    await insertRecords(at.db, [1, 2, 3, 4]);
    await stampOld(1, [2, 1]);
    const before = (await oldStamps()).rows;
    await at.latest();
    await at.down();
    expect((await oldStamps()).rows).toEqual(before);
    const indexes = await sql<{ indexname: string }>`
      select indexname from pg_indexes where tablename = 'records' order by indexname`.execute(
      at.db,
    );
    expect(indexes.rows.map((row) => row.indexname)).toEqual([
      'records_batch',
      'records_pkey',
      'records_topic_position',
      'records_unbatched',
    ]);
    await at.latest();
    expect(await membership(at.db)).toEqual([
      [hex(1), hex(1), 1],
      [hex(2), hex(1), 0],
      [hex(3), null, null],
      [hex(4), null, null],
    ]);
    expect(await frontier(at.db)).toBe(2);
  });
});

describe.each(TEST_DATABASE_KINDS)('the batcher’s queue on %s', (kind) => {
  let handle: DatabaseHandle;
  beforeEach(async () => {
    handle = await createTestDatabase(kind);
  });
  afterEach(() => handle.close());

  test('default: cuts take the oldest waiting records in seq order; the frontier follows the batches', async () => {
    await insertRecords(handle.db, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await cut(handle.db, 4, 1)).toEqual([1, 2, 3, 4].map(hex));
    // The cut set a horizon at seq 10; this read finds it settled and moves up to record 5.
    expect(await waiting(handle.db)).toMatchObject({ waiting: 6 });
    expect(await frontier(handle.db)).toBe(4);
    expect(await cut(handle.db, 100, 2)).toEqual([5, 6, 7, 8, 9, 10].map(hex));
    expect(await waiting(handle.db)).toEqual({ waiting: 0, oldestAgeMs: 0 });
    expect(await frontier(handle.db)).toBe(10);
    await insertRecords(handle.db, [11, 12, 13]);
    const state = await waiting(handle.db);
    expect(state.waiting).toBe(3);
    expect(state.oldestAgeMs).toBeGreaterThanOrEqual(0);
    expect(state.oldestAgeMs).toBeLessThan(60_000);
    expect(await frontier(handle.db)).toBe(10);
    expect(await cut(handle.db, 100, 3)).toEqual([11, 12, 13].map(hex));
    expect((await membership(handle.db)).map(([, batchId]) => batchId)).toEqual([
      ...Array(4).fill(hex(1)),
      ...Array(6).fill(hex(2)),
      ...Array(3).fill(hex(3)),
    ]);
  });

  test('behavior: an insert draws its seq after its transaction has an xid, even when it inserts nothing; seq is not cached', async () => {
    await insertRecords(handle.db, [1]);
    const assigned = await handle.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('records')
        .values(recordOf(1))
        .onConflict((c) => c.column('record_id').doNothing())
        .execute();
      const { rows } = await sql<{ assigned: boolean }>`
        select pg_current_xact_id_if_assigned() is not null as assigned`.execute(trx);
      return rows[0]?.assigned;
    });
    expect(assigned).toBe(true);
    const { rows } = await sql<{ cache_size: string | number }>`
      select cache_size from pg_sequences where sequencename = 'records_seq_seq'`.execute(
      handle.db,
    );
    expect(rows.map((row) => Number(row.cache_size))).toEqual([1]);
  });

  test('error: createBatch refuses an unknown record, and a record already in a batch, writing nothing', async () => {
    await insertRecords(handle.db, [1, 2]);
    await cut(handle.db, 1, 1);
    const attempt = (recordId: string) =>
      handle.db.transaction().execute((trx) =>
        createBatchLedger(trx, scope).createBatch(
          { batchId: hex(2), merkleRoot: hex(9), recordCount: 2 },
          [
            { recordId: hex(2), leafIndex: 0, leafHash: hex(20) },
            { recordId, leafIndex: 1, leafHash: hex(21) },
          ],
        ),
      );
    await expect(attempt(hex(99))).rejects.toMatchObject({
      name: 'LedgerError',
      shortMessage: 'batch update touched an unexpected number of records',
    });
    await expect(attempt(hex(1))).rejects.toMatchObject({ name: 'LedgerError' });
    expect(await membership(handle.db)).toEqual([
      [hex(1), hex(1), 0],
      [hex(2), null, null],
    ]);
    expect(await handle.db.selectFrom('batches').select('batch_id').execute()).toEqual([
      { batch_id: hex(1) },
    ]);
  });

  test('error: the frontier refuses to move in a transaction that has already written', async () => {
    await expect(
      handle.db.transaction().execute(async (trx) => {
        await trx.insertInto('records').values(recordOf(1)).execute();
        await readWaitingRecords(trx, { limit: 10 });
      }),
    ).rejects.toMatchObject({
      name: 'LedgerError',
      shortMessage: 'the batch frontier must move before its transaction writes',
    });
  });
});

describe('the batcher’s queue under concurrency (Postgres)', () => {
  let handle: DatabaseHandle;
  beforeEach(async () => {
    handle = await createTestDatabase('postgres');
  });
  afterEach(() => handle.close());

  /** A second connection of its own to the same database. */
  async function connect(): Promise<pg.Client> {
    const { rows } = await sql<{ db: string }>`select current_database() as db`.execute(handle.db);
    const url = new URL(process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/');
    url.pathname = `/${rows[0]!.db}`;
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    return client;
  }
  const insertOn = (client: pg.Client, n: number) => {
    const r = recordOf(n);
    return client.query(
      `insert into records (record_id, topic, subject, content_hash, accepted_at, payload, relay_id, session_id, position)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        r.record_id,
        r.topic,
        r.subject,
        r.content_hash,
        r.accepted_at,
        r.payload,
        r.relay_id,
        r.session_id,
        r.position,
      ],
    );
  };

  test('behavior: a record that commits after later records were batched is not passed over', async () => {
    const slow = await connect();
    try {
      await insertRecords(handle.db, [1]);
      await slow.query('begin');
      await insertOn(slow, 2); // seq 2, not committed
      await insertRecords(handle.db, [3]);
      expect(await cut(handle.db, 100, 1)).toEqual([hex(1), hex(3)]);
      // Reads and cuts while record 2 is in flight: the frontier stays below it.
      for (let i = 0; i < 3; i++) {
        expect(await waiting(handle.db)).toEqual({ waiting: 0, oldestAgeMs: 0 });
        expect(await cut(handle.db, 100, 10 + i)).toEqual([]);
      }
      expect(await frontier(handle.db)).toBe(0);
      await slow.query('commit');
      expect(await waiting(handle.db)).toMatchObject({ waiting: 1 });
      expect(await frontier(handle.db)).toBe(1);
      expect(await cut(handle.db, 100, 2)).toEqual([hex(2)]);
      expect(await membership(handle.db)).toEqual([
        [hex(1), hex(1), 0],
        [hex(2), hex(2), 0],
        [hex(3), hex(1), 1],
      ]);
      expect(await waiting(handle.db)).toEqual({ waiting: 0, oldestAgeMs: 0 });
      expect(await frontier(handle.db)).toBe(3);
    } finally {
      await slow.end();
    }
  });

  test('behavior: a cut waits for a concurrent one and takes the records after it', async () => {
    await insertRecords(handle.db, [1, 2, 3, 4, 5, 6, 7, 8]);
    let firstTook: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let firstCut!: () => void;
    const firstHasCut = new Promise<void>((resolve) => {
      firstCut = resolve;
    });
    const first = handle.db.transaction().execute(async (trx) => {
      const rows = await takeUnbatchedRecords(trx, { limit: 5 });
      firstTook = rows.map((row) => row.record_id);
      await createBatchLedger(trx, scope).createBatch(
        { batchId: hex(1), merkleRoot: hex(90), recordCount: rows.length },
        rows.map((row, leafIndex) => ({ recordId: row.record_id, leafIndex, leafHash: hex(91) })),
      );
      firstCut();
      await held;
    });
    await firstHasCut;
    const second = cut(handle.db, 5, 2);
    // The second is blocked on the cut lock while the first transaction is open.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { rows } = await sql<{ waiting: number }>`
      select count(*)::int as waiting from pg_locks
       where locktype = 'advisory' and objid = ${0x5ab47c7} and not granted`.execute(handle.db);
    expect(rows).toEqual([{ waiting: 1 }]);
    release();
    await first;
    expect(firstTook).toEqual([1, 2, 3, 4, 5].map(hex));
    expect(await second).toEqual([6, 7, 8].map(hex));
  });

  test('behavior: concurrent inserts, cuts and reads put every record in exactly one batch, leaves dense', async () => {
    const clients = await Promise.all([connect(), connect()]);
    try {
      const total = 600;
      let next = 1;
      // Two inserters, each in transactions of 1–8 records that stay open for a while.
      const inserters = clients.map(async (client) => {
        while (next <= total) {
          const count = 1 + Math.floor(Math.random() * 8);
          await client.query('begin');
          for (let i = 0; i < count && next <= total; i++) await insertOn(client, next++);
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 15));
          await client.query('commit');
        }
      });
      let batchByte = 1;
      let inserting = true;
      const cutters = [0, 1].map(async () => {
        while (inserting || (await waiting(handle.db)).waiting > 0) {
          await cut(handle.db, 1 + Math.floor(Math.random() * 40), batchByte++);
          await waiting(handle.db);
        }
      });
      await Promise.all(inserters);
      inserting = false;
      await Promise.all(cutters);

      const rows = await membership(handle.db);
      expect(rows).toHaveLength(total);
      expect(rows.filter(([, batchId]) => batchId === null)).toEqual([]);
      const batches = await handle.db
        .selectFrom('batches')
        .select(['batch_id', 'record_count'])
        .execute();
      for (const batch of batches) {
        const leaves = rows
          .filter(([, batchId]) => batchId === batch.batch_id)
          .map(([, , leafIndex]) => leafIndex);
        expect(leaves.sort((x, y) => Number(x) - Number(y))).toEqual(
          Array.from({ length: batch.record_count }, (_, i) => i),
        );
      }
      expect(batches.reduce((sum, batch) => sum + batch.record_count, 0)).toBe(total);
      const { rows: counts } = await sql<{ leaves: number; records: number }>`
        select (select count(*)::int from batch_leaves) as leaves,
               (select count(distinct record_seq)::int from batch_leaves) as records`.execute(
        handle.db,
      );
      expect(counts).toEqual([{ leaves: total, records: total }]);
      // All settled: the frontier reaches the last record.
      await waiting(handle.db);
      await waiting(handle.db);
      expect(await frontier(handle.db)).toBe(total);
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
  }, 60_000);
});
