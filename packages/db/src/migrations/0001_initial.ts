import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('batches')
    .addColumn('batch_id', 'text', (c) => c.primaryKey())
    .addColumn('seq', 'bigint', (c) => c.generatedAlwaysAsIdentity().notNull().unique())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('built', 'sent', 'anchored')`),
    )
    .addColumn('merkle_root', 'text', (c) => c.notNull())
    .addColumn('record_count', 'integer', (c) => c.notNull().check(sql`record_count > 0`))
    .addColumn('chain_id', 'integer', (c) => c.notNull())
    .addColumn('contract', 'text', (c) => c.notNull())
    .addColumn('signer', 'text')
    .addColumn('nonce', 'bigint')
    .addColumn('raw_tx', 'text')
    .addColumn('tx_hash', 'text')
    .addColumn('sent_at', 'timestamptz')
    .addColumn('block_number', 'bigint')
    .addColumn('block_hash', 'text')
    .addColumn('log_index', 'integer')
    .addColumn('anchored_at', 'timestamptz')
    .addColumn('receipts_sent_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('batches_status_seq')
    .on('batches')
    .columns(['status', 'seq'])
    .execute();

  await db.schema
    .createTable('records')
    .addColumn('record_id', 'text', (c) => c.primaryKey())
    .addColumn('seq', 'bigint', (c) => c.generatedAlwaysAsIdentity().notNull().unique())
    .addColumn('topic', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addColumn('accepted_at', 'bigint', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('relay_id', 'text', (c) => c.notNull())
    .addColumn('session_id', 'text', (c) => c.notNull())
    .addColumn('batch_id', 'text', (c) => c.references('batches.batch_id'))
    .addColumn('leaf_index', 'integer')
    .addColumn('leaf_hash', 'text')
    .addColumn('proof', 'jsonb')
    .addColumn('stored_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // The batcher's queue: records not yet in a batch, in ingest order.
  await sql`create index records_unbatched on records (seq) where batch_id is null`.execute(db);
  await db.schema
    .createIndex('records_batch')
    .on('records')
    .columns(['batch_id', 'leaf_index'])
    .execute();

  await db.schema
    .createTable('anchor_events')
    .addColumn('chain_id', 'integer', (c) => c.notNull())
    .addColumn('contract', 'text', (c) => c.notNull())
    .addColumn('block_number', 'bigint', (c) => c.notNull())
    .addColumn('block_hash', 'text', (c) => c.notNull())
    .addColumn('tx_hash', 'text', (c) => c.notNull())
    .addColumn('log_index', 'integer', (c) => c.notNull())
    .addColumn('batch_id', 'text', (c) => c.notNull())
    .addColumn('merkle_root', 'text', (c) => c.notNull())
    .addColumn('record_count', 'integer', (c) => c.notNull())
    .addColumn('writer', 'text', (c) => c.notNull())
    .addColumn('indexed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('anchor_events_pk', ['chain_id', 'block_hash', 'log_index'])
    .execute();
  await db.schema
    .createIndex('anchor_events_batch')
    .on('anchor_events')
    .columns(['batch_id'])
    .execute();

  await db.schema
    .createTable('indexer_cursors')
    .addColumn('chain_id', 'integer', (c) => c.notNull())
    .addColumn('contract', 'text', (c) => c.notNull())
    .addColumn('block_number', 'bigint', (c) => c.notNull())
    .addColumn('block_hash', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('indexer_cursors_pk', ['chain_id', 'contract'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['indexer_cursors', 'anchor_events', 'records', 'batches']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
