import { type DatabaseHandle, migrateToLatest, openDatabase } from '@streamanchor/db';
import { createThrowawayPostgres } from './postgres';

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
