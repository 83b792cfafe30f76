import { type Kysely, sql } from 'kysely';

/**
 * Payload retention: the writer may drop the payloads of records whose batch is final and
 * older than its PAYLOAD_RETENTION_DAYS (`pruneRecordPayloads`). A pruned record keeps every
 * leaf field (content_hash included), so its batch's tree, root and proofs are rebuilt exactly
 * as before; only `payload` becomes NULL, and history serves it as `payload: null`.
 *
 * - `records.payload` may be NULL (dropping NOT NULL only changes the catalog: no rewrite).
 * - `payload_prune_cursors` holds, per chain and contract, the highest batch `seq` whose
 *   records have been pruned: the pruner walks batches in `seq` order from there, so a restart
 *   does not scan pruned history again. No index on records is added (each would cost every
 *   insert an entry; see migration 0006): the pruner reaches a batch's records through
 *   `records_batch`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table records alter column payload drop not null`.execute(db);
  await db.schema
    .createTable('payload_prune_cursors')
    .addColumn('chain_id', 'integer', (c) => c.notNull())
    .addColumn('contract', 'text', (c) => c.notNull())
    .addColumn('batch_seq', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('payload_prune_cursors_pk', ['chain_id', 'contract'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('payload_prune_cursors').ifExists().execute();
  // Pruned payloads are gone: an empty text keeps the column NOT NULL again (content_hash
  // still says what the payload was).
  await sql`update records set payload = '' where payload is null`.execute(db);
  await sql`alter table records alter column payload set not null`.execute(db);
}
