import { type Kysely, sql } from 'kysely';

/**
 * Poison isolation: records (and audit events) the writer could not store go here instead of
 * holding the rest of their job hostage. One row per rejected item of a job; `raw` is the
 * item's JSON text (JSON.stringify escapes U+0000 and lone surrogates, so any item fits).
 * (job_id, item_index) is unique, so a retried job never dead-letters the same item twice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('dead_letters')
    .addColumn('id', 'bigint', (c) => c.generatedAlwaysAsIdentity().primaryKey())
    .addColumn('queue', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('item_index', 'integer', (c) => c.notNull())
    .addColumn('record_id', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('raw', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('dead_letters_job_item', ['queue', 'job_id', 'item_index'])
    .execute();
  await db.schema
    .createIndex('dead_letters_record')
    .on('dead_letters')
    .column('record_id')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('dead_letters').ifExists().execute();
}
