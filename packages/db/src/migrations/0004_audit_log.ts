import { type Kysely, sql } from 'kysely';

/**
 * The audit log: an append-only hash chain of security-relevant events, written only by
 * `appendAudit` (packages/db/src/audit.ts). `seq` is dense (1, 2, 3, …) and assigned under an
 * advisory lock, not by a sequence (a sequence skips values on rollback, and the hash commits
 * to seq); `prev_hash` is unique, so the chain can never fork. `audit_anchors` lists the heads
 * the writer anchored on chain as records of the reserved topic `_audit`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('audit_log')
    .addColumn('seq', 'bigint', (c) => c.primaryKey().check(sql`seq >= 1`))
    .addColumn('event_id', 'text', (c) => c.notNull().unique())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('subject', 'text')
    .addColumn('relay_id', 'text')
    .addColumn('session_id', 'text')
    .addColumn('address', 'text')
    .addColumn('details', 'jsonb', (c) => c.notNull())
    .addColumn('prev_hash', 'text', (c) => c.notNull().unique())
    .addColumn('entry_hash', 'text', (c) => c.notNull().unique())
    .addColumn('appended_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('audit_anchors')
    .addColumn('seq', 'bigint', (c) => c.primaryKey().references('audit_log.seq'))
    .addColumn('entry_hash', 'text', (c) => c.notNull())
    .addColumn('record_id', 'text', (c) => c.notNull().unique().references('records.record_id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('audit_anchors').ifExists().execute();
  await db.schema.dropTable('audit_log').ifExists().execute();
}
