import type { Database } from '@streamanchor/db';
import { type Kysely, sql, type Transaction } from 'kysely';
import { IndexerError } from '../errors';
import type { AnchorEvent } from './logs';

export interface Cursor {
  /** Last block fully read. */
  blockNumber: bigint;
  /** Hash of that block when it was read; null before the first range (or below block 0). */
  blockHash: string | null;
}

export interface CursorKey {
  chainId: number;
  /** Lowercase contract address. */
  contract: string;
}

/** Another writer moved the cursor under us: two indexers run against one database. */
export class CursorConflictError extends IndexerError {
  override name = 'CursorConflictError';
  constructor(key: CursorKey, expected: bigint) {
    super('indexer cursor moved concurrently; is a second indexer running on this database?', {
      ...key,
      expectedBlock: expected.toString(),
    });
  }
}

/** Rows per INSERT / VALUES list (pg allows 65 535 parameters per statement). */
const CHUNK = 1000;

export async function readCursor(
  db: Kysely<Database>,
  key: CursorKey,
): Promise<Cursor | undefined> {
  const row = await db
    .selectFrom('indexer_cursors')
    .select(['block_number', 'block_hash'])
    .where('chain_id', '=', key.chainId)
    .where('contract', '=', key.contract)
    .executeTakeFirst();
  return row ? { blockNumber: BigInt(row.block_number), blockHash: row.block_hash } : undefined;
}

export interface ApplyResult {
  /** Events new to the database. */
  inserted: number;
  /** Batches of this database that the events marked anchored. */
  anchored: number;
  /** Events whose batch id this database does not know (another deployment's writer). */
  unknown: number;
  /** Events whose batch id is known but whose root or count differ from the stored batch. */
  mismatched: {
    batchId: string;
    stored: { merkleRoot: string; recordCount: number };
    event: AnchorEvent;
  }[];
}

/**
 * Stores one range's events, marks the matching batches anchored and moves the cursor
 * from `previous` to `next`, all in one transaction: after a crash either all of it
 * happened or none of it did.
 */
export async function applyRange(
  db: Kysely<Database>,
  key: CursorKey,
  events: readonly AnchorEvent[],
  previous: Cursor,
  next: Cursor,
): Promise<ApplyResult> {
  return db.transaction().execute(async (tx) => {
    const result: ApplyResult = { inserted: 0, anchored: 0, unknown: 0, mismatched: [] };
    for (let i = 0; i < events.length; i += CHUNK) {
      const rows = events.slice(i, i + CHUNK).map((event) => ({
        chain_id: key.chainId,
        contract: key.contract,
        block_number: event.blockNumber.toString(),
        block_hash: event.blockHash,
        tx_hash: event.txHash,
        log_index: event.logIndex,
        batch_id: event.batchId,
        merkle_root: event.merkleRoot,
        record_count: event.recordCount,
        writer: event.writer,
      }));
      const inserted = await tx
        .insertInto('anchor_events')
        .values(rows)
        .onConflict((oc) => oc.columns(['chain_id', 'block_hash', 'log_index']).doNothing())
        .executeTakeFirst();
      result.inserted += Number(inserted.numInsertedOrUpdatedRows ?? 0);
    }

    const matched: AnchorEvent[] = [];
    for (let i = 0; i < events.length; i += CHUNK) {
      const slice = events.slice(i, i + CHUNK);
      const known = await tx
        .selectFrom('batches')
        .select(['batch_id', 'merkle_root', 'record_count'])
        .where(
          'batch_id',
          'in',
          slice.map((event) => event.batchId),
        )
        .execute();
      const byId = new Map(known.map((row) => [row.batch_id.toLowerCase(), row]));
      for (const event of slice) {
        const stored = byId.get(event.batchId);
        if (!stored) result.unknown += 1;
        else if (
          stored.merkle_root.toLowerCase() !== event.merkleRoot ||
          stored.record_count !== event.recordCount
        ) {
          result.mismatched.push({
            batchId: event.batchId,
            stored: { merkleRoot: stored.merkle_root, recordCount: stored.record_count },
            event,
          });
        } else matched.push(event);
      }
    }
    for (let i = 0; i < matched.length; i += CHUNK) {
      result.anchored += await markAnchored(tx, matched.slice(i, i + CHUNK));
    }

    await moveCursor(tx, key, previous, next);
    return result;
  });
}

async function markAnchored(
  tx: Transaction<Database>,
  events: readonly AnchorEvent[],
): Promise<number> {
  const values = sql.join(
    events.map(
      (event) =>
        sql`(${event.batchId}::text, ${event.txHash}::text, ${event.blockNumber.toString()}::bigint, ${event.blockHash}::text, ${event.logIndex}::integer)`,
    ),
  );
  const result = await sql`
    update batches as b
    set status = 'anchored', tx_hash = v.tx_hash, block_number = v.block_number,
        block_hash = v.block_hash, log_index = v.log_index, anchored_at = now()
    from (values ${values}) as v(batch_id, tx_hash, block_number, block_hash, log_index)
    where b.batch_id = v.batch_id
      and (b.status <> 'anchored' or b.block_hash is distinct from v.block_hash or b.log_index is distinct from v.log_index)
  `.execute(tx);
  return Number(result.numAffectedRows ?? 0);
}

/** Compare-and-set of the cursor row; the first write inserts it. */
export async function moveCursor(
  tx: Transaction<Database>,
  key: CursorKey,
  previous: Cursor | undefined,
  next: Cursor,
): Promise<void> {
  const exists = await tx
    .selectFrom('indexer_cursors')
    .select('block_number')
    .where('chain_id', '=', key.chainId)
    .where('contract', '=', key.contract)
    .forUpdate()
    .executeTakeFirst();
  if (!exists) {
    await tx
      .insertInto('indexer_cursors')
      .values({
        chain_id: key.chainId,
        contract: key.contract,
        block_number: next.blockNumber.toString(),
        block_hash: next.blockHash,
      })
      .execute();
    return;
  }
  if (previous && BigInt(exists.block_number) !== previous.blockNumber) {
    throw new CursorConflictError(key, previous.blockNumber);
  }
  await tx
    .updateTable('indexer_cursors')
    .set({
      block_number: next.blockNumber.toString(),
      block_hash: next.blockHash,
      updated_at: sql`now()`,
    })
    .where('chain_id', '=', key.chainId)
    .where('contract', '=', key.contract)
    .execute();
}

/** Stored events at or below `atOrBelow`, newest first, one row per (block, hash). */
export async function eventBlocks(
  db: Kysely<Database>,
  key: CursorKey,
  atOrBelow: bigint,
): Promise<{ blockNumber: bigint; blockHash: string }[]> {
  const rows = await db
    .selectFrom('anchor_events')
    .select(['block_number', 'block_hash'])
    .distinct()
    .where('chain_id', '=', key.chainId)
    .where('contract', '=', key.contract)
    .where('block_number', '<=', atOrBelow.toString())
    .orderBy('block_number', 'desc')
    .execute();
  return rows.map((row) => ({ blockNumber: BigInt(row.block_number), blockHash: row.block_hash }));
}

/**
 * Undoes everything read above `target`: deletes those events, puts their batches back
 * to 'sent' (so the writer's and the indexer's views agree again) with the receipts to
 * be sent anew, and moves the cursor down. Returns the batch ids put back.
 */
export async function rewind(
  db: Kysely<Database>,
  key: CursorKey,
  previous: Cursor,
  target: Cursor,
): Promise<string[]> {
  return db.transaction().execute(async (tx) => {
    const { rows } = await sql<{ batch_id: string }>`
      with gone as (
        delete from anchor_events
        where chain_id = ${key.chainId} and contract = ${key.contract} and block_number > ${target.blockNumber.toString()}::bigint
        returning batch_id
      )
      update batches
      set status = 'sent', block_number = null, block_hash = null, log_index = null,
          anchored_at = null, receipts_sent_at = null
      where batch_id in (select batch_id from gone) and status = 'anchored'
      returning batch_id
    `.execute(tx);
    await moveCursor(tx, key, previous, target);
    return rows.map((row) => row.batch_id);
  });
}
