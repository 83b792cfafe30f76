import type { Kysely } from 'kysely';

/**
 * Proofs are derived, not stored: a batch's tree is a function of its records' leaf fields
 * in leaf order, so the ledger rebuilds it (and checks it against the anchored root) when it
 * reads a batch. The `proof` column held log2(batch size) hashes per record, most of the
 * row at large batches, written once and read at least twice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('records').dropColumn('proof').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('records').addColumn('proof', 'jsonb').execute();
}
