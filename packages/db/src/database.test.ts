import { sql } from 'kysely';
import { describe, expect, test } from 'vitest';
import { migrateToLatest, openDatabase } from './database';
import type { NewRecordRow } from './schema';
import { createTestDatabase, TEST_DATABASE_KINDS } from './testing';

const record = (id: string): NewRecordRow => ({
  record_id: id,
  topic: 'demo',
  subject: 'alice',
  content_hash: `0x${'22'.repeat(32)}`,
  accepted_at: 1_700_000_000_000,
  payload: '{}',
  relay_id: 'relay-1',
  session_id: 'AAAAAAAAAAAAAAAAAAAAAA',
});

describe.each(TEST_DATABASE_KINDS)('%s', (kind) => {
  test('default: migrations apply and re-running them is a no-op', async () => {
    const handle = await createTestDatabase(kind);
    try {
      expect(handle.kind).toBe(kind);
      await migrateToLatest(handle.db);
      const tables = await sql<{ table_name: string }>`
        select table_name from information_schema.tables where table_schema = 'public' order by table_name`.execute(
        handle.db,
      );
      expect(tables.rows.map((row) => row.table_name)).toEqual(
        expect.arrayContaining(['anchor_events', 'batches', 'indexer_cursors', 'records']),
      );
    } finally {
      await handle.close();
    }
  });

  test('behavior: records carry three indexes, each written once per record: the key, seq and a partial topic position index', async () => {
    const handle = await createTestDatabase(kind);
    try {
      const indexes = await sql<{ indexname: string; indexdef: string }>`
        select indexname, indexdef from pg_indexes where tablename = 'records' order by indexname`.execute(
        handle.db,
      );
      // Each index takes an entry per row version; a record has one (migration 0010).
      expect(indexes.rows.map((row) => row.indexname)).toEqual([
        'records_pkey',
        'records_seq',
        'records_topic_position',
      ]);
      const definition = (name: string) =>
        indexes.rows.find((row) => row.indexname === name)?.indexdef ?? '';
      expect(definition('records_seq')).toBe(
        'CREATE INDEX records_seq ON public.records USING btree (seq)',
      );
      // Not unique: a Redis reset restarts a topic's positions (see migration 0007).
      expect(definition('records_topic_position')).toMatch(
        /^CREATE INDEX records_topic_position ON public\.records USING btree \(topic, "?position"?\) WHERE \("?position"? IS NOT NULL\)$/,
      );
      const column = await sql<{ data_type: string; is_nullable: string }>`
        select data_type, is_nullable from information_schema.columns
         where table_name = 'records' and column_name = 'position'`.execute(handle.db);
      expect(column.rows).toEqual([{ data_type: 'bigint', is_nullable: 'YES' }]);
      const leaves = await sql<{ indexname: string; indexdef: string }>`
        select indexname, indexdef from pg_indexes where tablename = 'batch_leaves' order by indexname`.execute(
        handle.db,
      );
      expect(leaves.rows.map((row) => row.indexdef)).toEqual([
        'CREATE UNIQUE INDEX batch_leaves_pkey ON public.batch_leaves USING btree (batch_seq, leaf_index)',
        'CREATE UNIQUE INDEX batch_leaves_record ON public.batch_leaves USING btree (record_seq)',
      ]);
    } finally {
      await handle.close();
    }
  });

  test('behavior: record ids are unique; a repeated insert is ignored with on conflict', async () => {
    const handle = await createTestDatabase(kind);
    try {
      const id = `0x${'11'.repeat(32)}`;
      await handle.db.insertInto('records').values(record(id)).execute();
      await handle.db
        .insertInto('records')
        .values(record(id))
        .onConflict((c) => c.column('record_id').doNothing())
        .execute();
      const rows = await handle.db
        .selectFrom('records')
        .select(['record_id', 'seq', 'accepted_at'])
        .execute();
      expect(rows).toHaveLength(1);
      expect(Number(rows[0]?.accepted_at)).toBe(1_700_000_000_000);
    } finally {
      await handle.close();
    }
  });

  test('error: a batch status outside the lifecycle is refused', async () => {
    const handle = await createTestDatabase(kind);
    try {
      await expect(
        handle.db
          .insertInto('batches')
          .values({
            batch_id: `0x${'33'.repeat(32)}`,
            status: 'lost' as 'built',
            merkle_root: `0x${'44'.repeat(32)}`,
            record_count: 1,
            chain_id: 31337,
            contract: `0x${'55'.repeat(20)}`,
          } as never)
          .execute(),
      ).rejects.toThrow(/check constraint/);
    } finally {
      await handle.close();
    }
  });
});

test('behavior: PGlite keeps data in its folder across reopen', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'sa-pglite-'));
  try {
    const first = await openDatabase({ pgliteDir: dir });
    await migrateToLatest(first.db);
    await first.db
      .insertInto('records')
      .values(record(`0x${'66'.repeat(32)}`))
      .execute();
    await first.close();
    const second = await openDatabase({ pgliteDir: dir });
    const rows = await second.db.selectFrom('records').select('record_id').execute();
    await second.close();
    expect(rows).toEqual([{ record_id: `0x${'66'.repeat(32)}` }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('behavior: PGlite is vacuumed every pgliteVacuumMs (it has no autovacuum), even mid-transaction, and analyzed once per pgliteAnalyzeMs with a small statistics target', async () => {
  const errors: Error[] = [];
  const handle = await openDatabase({
    pgliteDir: 'memory://',
    pgliteVacuumMs: 50,
    pgliteAnalyzeMs: 60_000,
    onMaintenanceError: (error) => errors.push(error),
  });
  try {
    await migrateToLatest(handle.db);
    await handle.db
      .insertInto('records')
      .values(Array.from({ length: 50 }, (_, i) => record(`0x${i.toString(16).padStart(64, '0')}`)))
      .execute();
    // A transaction held open across several intervals: VACUUM cannot run inside one, so it
    // must wait for the connection rather than interleave.
    await handle.db.transaction().execute(async (trx) => {
      await trx.updateTable('records').set({ subject: 'bob' }).execute();
      await new Promise((done) => setTimeout(done, 200));
    });
    const counts = async () => {
      const { rows } = await sql<{ vacuums: number; analyzes: number }>`
        select vacuum_count::int as vacuums, analyze_count::int as analyzes
          from pg_stat_user_tables where relname = 'records'`.execute(handle.db);
      return rows[0] ?? { vacuums: 0, analyzes: 0 };
    };
    const deadline = Date.now() + 10_000;
    while ((await counts()).vacuums < 3 && Date.now() < deadline) {
      await new Promise((done) => setTimeout(done, 50));
    }
    const { vacuums, analyzes } = await counts();
    expect(vacuums).toBeGreaterThanOrEqual(3);
    expect(analyzes).toBe(1);
    // Statistics target 10: at most 11 histogram bounds for 50 distinct ids (the default,
    // 100, would keep all 50).
    const { rows } = await sql<{ bounds: number }>`
      select array_length(histogram_bounds::text::text[], 1) as bounds
        from pg_stats where tablename = 'records' and attname = 'record_id'`.execute(handle.db);
    expect(rows[0]?.bounds).toBe(11);
  } finally {
    await handle.close();
  }
  expect(errors).toEqual([]);
});

test('behavior: openServiceDatabase opens PGlite under DATA_DIR, migrates, and says where', async () => {
  const { mkdtempSync, rmSync, existsSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { openServiceDatabase } = await import('./database');
  const dataDir = mkdtempSync(join(tmpdir(), 'sa-service-db-'));
  const lines: string[] = [];
  const logger = {
    info: (_: object, m: string) => lines.push(m),
    warn: (_: object, m: string) => lines.push(m),
  };
  try {
    const handle = await openServiceDatabase({ dataDir, logger });
    const rows = await handle.db.selectFrom('batches').select('batch_id').execute();
    await handle.close();
    expect(rows).toEqual([]);
    expect(handle.kind).toBe('pglite');
    expect(existsSync(join(dataDir, 'pglite'))).toBe(true);
    expect(lines).toEqual(['database ready']);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('error: openServiceDatabase fails on an unreachable Postgres', async () => {
  const { openServiceDatabase } = await import('./database');
  const logger = { info: () => {}, warn: () => {} };
  await expect(
    openServiceDatabase({
      databaseUrl: 'postgres://postgres@127.0.0.1:1/none',
      dataDir: 'unused',
      logger,
    }),
  ).rejects.toThrow();
});
