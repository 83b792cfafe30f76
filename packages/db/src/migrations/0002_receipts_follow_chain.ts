import { type Kysely, sql } from 'kysely';

/**
 * Receipts that follow the chain:
 * - batch status `anchored` becomes `included` (seen in a canonical block) and `final`
 *   (that block is FINALITY_DEPTH deep); `revision` counts every change of a batch's
 *   anchoring, so clients can order receipt updates that arrive out of order;
 * - `receipt_notices`: the outbox of receipt updates (included, final, reorged), one row
 *   per batch revision, written in the same transaction as the transition it announces;
 * - `indexer_blocks`: the window of recent block headers, linked by parent hash, that the
 *   indexer checks every new block and every log against.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table batches drop constraint if exists batches_status_check`.execute(db);
  await sql`update batches set status = 'included' where status = 'anchored'`.execute(db);
  await sql`alter table batches add constraint batches_status_check
    check (status in ('built', 'sent', 'included', 'final'))`.execute(db);
  await db.schema.alterTable('batches').renameColumn('anchored_at', 'included_at').execute();
  await db.schema.alterTable('batches').dropColumn('receipts_sent_at').execute();
  await db.schema.alterTable('batches').addColumn('final_at', 'timestamptz').execute();
  await db.schema
    .alterTable('batches')
    .addColumn('revision', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('receipt_notices')
    .addColumn('id', 'bigint', (c) => c.generatedAlwaysAsIdentity().primaryKey())
    .addColumn('batch_id', 'text', (c) => c.notNull().references('batches.batch_id'))
    .addColumn('revision', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('included', 'final', 'reorged')`),
    )
    .addColumn('tx_hash', 'text', (c) => c.notNull())
    .addColumn('block_number', 'bigint', (c) => c.notNull())
    .addColumn('block_hash', 'text', (c) => c.notNull())
    .addColumn('log_index', 'integer', (c) => c.notNull())
    .addColumn('confirmations', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('sent_at', 'timestamptz')
    .addUniqueConstraint('receipt_notices_batch_revision', ['batch_id', 'revision'])
    .execute();
  await sql`create index receipt_notices_unsent on receipt_notices (id) where sent_at is null`.execute(
    db,
  );

  await db.schema
    .createTable('indexer_blocks')
    .addColumn('chain_id', 'integer', (c) => c.notNull())
    .addColumn('contract', 'text', (c) => c.notNull())
    .addColumn('block_number', 'bigint', (c) => c.notNull())
    .addColumn('block_hash', 'text', (c) => c.notNull())
    .addColumn('parent_hash', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('indexer_blocks_pk', ['chain_id', 'contract', 'block_number'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('indexer_blocks').ifExists().execute();
  await db.schema.dropTable('receipt_notices').ifExists().execute();
  await sql`alter table batches drop constraint if exists batches_status_check`.execute(db);
  await sql`update batches set status = 'anchored' where status in ('included', 'final')`.execute(
    db,
  );
  await sql`alter table batches add constraint batches_status_check
    check (status in ('built', 'sent', 'anchored'))`.execute(db);
  await db.schema.alterTable('batches').dropColumn('revision').execute();
  await db.schema.alterTable('batches').dropColumn('final_at').execute();
  await db.schema.alterTable('batches').addColumn('receipts_sent_at', 'timestamptz').execute();
  await db.schema.alterTable('batches').renameColumn('included_at', 'anchored_at').execute();
}
