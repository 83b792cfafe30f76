import { randomBytes } from 'node:crypto';
import { type DatabaseHandle, migrateToLatest, openDatabase } from '@streamanchor/db';
import pg from 'pg';

export type TestDatabaseKind = 'pglite' | 'postgres';
export const TEST_DATABASE_KINDS: readonly TestDatabaseKind[] = ['pglite', 'postgres'];

/** The server tests create their throwaway databases on (CI and dev machines run one here). */
export const TEST_POSTGRES_URL =
  process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * A fresh, migrated database for one test: an in-memory PGlite, or a new database on
 * the test Postgres server that `close()` drops.
 */
export async function createTestDatabase(kind: TestDatabaseKind): Promise<DatabaseHandle> {
  if (kind === 'pglite') {
    const handle = await openDatabase({ pgliteDir: 'memory://' });
    await migrateToLatest(handle.db);
    return handle;
  }
  const name = `sa_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  const handle = await openDatabase({
    databaseUrl: url.toString(),
    pgliteDir: 'unused',
    poolSize: 4,
  });
  await migrateToLatest(handle.db);
  return {
    ...handle,
    async close() {
      await handle.close();
      const dropper = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await dropper.connect();
      try {
        // pg.Pool#end() resolves before its sockets have closed: wait for those backends to go,
        // or the forced drop kills them and the pool re-emits their FATAL as an unhandled 'error'.
        for (let i = 0; i < 50; i++) {
          const { rows } = await dropper.query<{ n: number }>(
            'select count(*)::int as n from pg_stat_activity where datname = $1',
            [name],
          );
          if (!rows[0] || rows[0].n === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        await dropper.query(`drop database if exists ${name} with (force)`);
      } finally {
        await dropper.end();
      }
    },
  };
}
