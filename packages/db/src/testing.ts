// Test fixtures for databases: throwaway Postgres databases and migrated test handles.
// They live here, not in @streamanchor/testing, so that db's own tests need no package that
// depends on db (a cycle turbo refuses). @streamanchor/testing re-exports them.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The server tests create their throwaway databases on (CI and dev machines run one here). */
export const TEST_POSTGRES_URL =
  process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface ThrowawayPostgres {
  /** postgres:// URL of a new, empty database (no schema: services migrate it themselves). */
  url: string;
  name: string;
  /** Drops the database, disconnecting whoever is still connected. */
  drop(): Promise<void>;
}

/**
 * An empty database on the test Postgres server, for tests that start services as separate
 * processes and hand them a DATABASE_URL (createTestDatabase gives an in-process handle instead).
 */
export async function createThrowawayPostgres(label = 'e2e'): Promise<ThrowawayPostgres> {
  const name = `sa_${label.replace(/[^a-z0-9_]/g, '_')}_${randomBytes(6).toString('hex')}`;
  await withAdmin((admin) => admin.query(`create database ${name}`));
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () =>
      withAdmin(async (admin) => {
        // pg.Pool#end() resolves before its sockets have closed: give those backends a moment
        // to go, or the forced drop kills them and a pool re-emits their FATAL as an 'error'.
        for (let i = 0; i < 50; i++) {
          const { rows } = await admin.query<{ n: number }>(
            'select count(*)::int as n from pg_stat_activity where datname = $1',
            [name],
          );
          if (!rows[0] || rows[0].n === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        await admin.query(`drop database if exists ${name} with (force)`);
      }),
  };
}

async function withAdmin<T>(work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

import { type DatabaseHandle, migrateToLatest, openDatabase } from './database';

export type TestDatabaseKind = 'pglite' | 'postgres';
export const TEST_DATABASE_KINDS: readonly TestDatabaseKind[] = ['pglite', 'postgres'];

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
  const postgres = await createThrowawayPostgres('test');
  const handle = await openDatabase({
    databaseUrl: postgres.url,
    pgliteDir: 'unused',
    poolSize: 4,
  });
  await migrateToLatest(handle.db);
  return {
    ...handle,
    async close() {
      await handle.close();
      await postgres.drop();
    },
  };
}
