import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, Migrator, PostgresDialect, sql } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import { migrations } from './migrations/index';
import type { Database } from './schema';

export type DatabaseKind = 'postgres' | 'pglite';

export interface DatabaseHandle {
  db: Kysely<Database>;
  kind: DatabaseKind;
  /** Where the data lives, with no password in it (for logs). */
  location: string;
  close(): Promise<void>;
}

export interface DatabaseConfig {
  /** postgres:// URL. When absent, PGlite (embedded Postgres) runs in `pgliteDir`. */
  databaseUrl?: string | undefined;
  /** PGlite data folder; `memory://` keeps it in memory (tests). */
  pgliteDir: string;
  poolSize?: number;
  /** Called when an idle Postgres connection fails (the pool replaces it); for logging. */
  onIdleError?: (error: Error) => void;
  /**
   * PGlite only: how often to VACUUM the database (default 30 s; 0: never). PGlite has no
   * autovacuum, so without this every row version an update leaves (batch and notice status
   * changes, the batcher's frontier, pruned payloads) and its index entries stay. A plain
   * VACUUM costs about what changed since the last one (tens of ms here).
   */
  pgliteVacuumMs?: number;
  /**
   * PGlite only: how often to ANALYZE (default 5 min; 0: never), after a vacuum. ANALYZE
   * samples rows whatever changed (~0.5 s at the default statistics target on a 150k-record
   * table, and PGlite's one connection waits for it), so it runs rarely and with a small
   * target (PGLITE_STATISTICS_TARGET): our queries are index lookups that need row counts,
   * not fine histograms.
   */
  pgliteAnalyzeMs?: number;
  /** Called when a PGlite VACUUM fails (it is retried at the next interval); for logging. */
  onMaintenanceError?: (error: Error) => void;
}

/** Default PGlite VACUUM interval. */
export const PGLITE_VACUUM_MS = 30_000;
/** Default PGlite ANALYZE interval. */
export const PGLITE_ANALYZE_MS = 300_000;
/** default_statistics_target for PGlite's ANALYZE: samples 3,000 rows instead of 30,000. */
export const PGLITE_STATISTICS_TARGET = 10;

/**
 * Opens the database: Postgres when a URL is given, else PGlite. PGlite is one
 * process's embedded database: two processes must not open the same folder.
 */
export async function openDatabase(config: DatabaseConfig): Promise<DatabaseHandle> {
  if (config.databaseUrl) {
    const pool = new pg.Pool({ connectionString: config.databaseUrl, max: config.poolSize ?? 10 });
    // An idle client's socket error (e.g. Postgres restarting) is emitted on the pool; without a
    // listener it would crash the process. The pool drops that client and reconnects on demand.
    pool.on('error', (error) => config.onIdleError?.(error));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    const url = new URL(config.databaseUrl);
    if (url.password) url.password = '***';
    return { db, kind: 'postgres', location: url.toString(), close: () => db.destroy() };
  }
  if (!config.pgliteDir.startsWith('memory://')) mkdirSync(config.pgliteDir, { recursive: true });
  const pglite = await PGlite.create(config.pgliteDir);
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  const vacuum = startVacuumLoop(db, {
    vacuumMs: config.pgliteVacuumMs ?? PGLITE_VACUUM_MS,
    analyzeMs: config.pgliteAnalyzeMs ?? PGLITE_ANALYZE_MS,
    onError: config.onMaintenanceError,
  });
  return {
    db,
    kind: 'pglite',
    location: config.pgliteDir,
    close: async () => {
      await vacuum.stop();
      await db.destroy();
    },
  };
}

/**
 * Autovacuum's job, for PGlite: VACUUM every `vacuumMs`, and ANALYZE (small statistics
 * target) after the first vacuum and then every `analyzeMs`. Through Kysely, so that it waits
 * for the single connection like any query (never inside someone's transaction).
 */
function startVacuumLoop(
  db: Kysely<Database>,
  {
    vacuumMs,
    analyzeMs,
    onError,
  }: { vacuumMs: number; analyzeMs: number; onError: ((error: Error) => void) | undefined },
): { stop(): Promise<void> } {
  if (vacuumMs <= 0) return { stop: async () => {} };
  let running: Promise<void> | undefined;
  let analyzedAt: number | undefined;
  const maintain = async () => {
    await sql`vacuum`.execute(db);
    if (analyzeMs <= 0 || (analyzedAt !== undefined && Date.now() - analyzedAt < analyzeMs)) return;
    // ANALYZE, unlike VACUUM, may run in a transaction: `set local` keeps the target to it.
    await db.transaction().execute(async (trx) => {
      await sql`set local default_statistics_target = ${sql.lit(PGLITE_STATISTICS_TARGET)}`.execute(
        trx,
      );
      await sql`analyze`.execute(trx);
    });
    analyzedAt = Date.now();
  };
  const timer = setInterval(() => {
    running ??= maintain()
      .catch((error: unknown) => onError?.(error as Error))
      .finally(() => {
        running = undefined;
      });
  }, vacuumMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/** Brings the schema up to date; safe to run from several services at once (Kysely takes a lock). */
export async function migrateToLatest(db: Kysely<Database>): Promise<void> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((result) => result.status === 'Error');
  if (error || failed) {
    throw new Error(
      `database migration ${failed?.migrationName ?? ''} failed: ${(error as Error)?.message ?? 'unknown'}`,
      {
        cause: error,
      },
    );
  }
}

/** The little of a logger openServiceDatabase needs (a pino logger fits). */
export interface DatabaseLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/**
 * What a service does at start: open its configured database (PGlite in `${dataDir}/pglite`
 * when there is no URL), bring the schema up to date, and say where the data lives. The
 * handle is closed again if the migration fails.
 */
export async function openServiceDatabase({
  databaseUrl,
  dataDir,
  logger,
}: {
  databaseUrl?: string | undefined;
  dataDir: string;
  logger: DatabaseLogger;
}): Promise<DatabaseHandle> {
  const handle = await openDatabase({
    databaseUrl,
    pgliteDir: join(dataDir, 'pglite'),
    onIdleError: (error) => logger.warn({ err: error }, 'idle Postgres connection failed'),
    onMaintenanceError: (error) => logger.warn({ err: error }, 'PGlite VACUUM failed'),
  });
  try {
    await migrateToLatest(handle.db);
  } catch (error) {
    await handle.close().catch(() => {});
    throw error;
  }
  logger.info({ kind: handle.kind, location: handle.location }, 'database ready');
  return handle;
}
