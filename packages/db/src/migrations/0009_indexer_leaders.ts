import { type Kysely, sql } from 'kysely';

/**
 * Active/standby indexers: `indexer_leaders` holds, per chain and contract, the epoch of the
 * indexer that is active (the one holding the leader lock). Each indexer that becomes active
 * bumps the epoch, and every write transaction of the active one checks (FOR SHARE) that the
 * epoch is still its own: a stale indexer that lost the lock has its writes rejected, and the
 * bump waits for any of its transactions still in flight. Written only by the chain-indexer's
 * leader module (apps/chain-indexer/src/leader).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('indexer_leaders')
    .addColumn('chain_id', 'integer', (c) => c.notNull())
    .addColumn('contract', 'text', (c) => c.notNull())
    .addColumn('epoch', 'bigint', (c) => c.notNull())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('acquired_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('indexer_leaders_pk', ['chain_id', 'contract'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('indexer_leaders').ifExists().execute();
}
