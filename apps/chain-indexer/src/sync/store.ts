import { createBatchLedger, type Database, type LedgerScope } from '@streamanchor/db';
import { type Kysely, sql, type Transaction } from 'kysely';
import { IndexerError } from '../errors';
import type { Fence } from '../leader';
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
  /** Batches of this database the events made included (or final, when already deep). */
  included: string[];
  /** Batches that became final in this step (their block reached the finality depth). */
  finalized: string[];
  /** Events whose batch id this database does not know (another deployment's writer). */
  unknown: number;
  /** Events whose batch id is known but whose root or count differ from the stored batch. */
  mismatched: {
    batchId: string;
    stored: { merkleRoot: string; recordCount: number };
    event: AnchorEvent;
  }[];
}

/** A canonical block header the indexer checked, kept in the window near the head. */
export interface BlockHeader {
  blockNumber: bigint;
  blockHash: `0x${string}`;
  parentHash: `0x${string}`;
}

export interface CommitInput {
  events: readonly AnchorEvent[];
  /** Headers to add to the window (realtime steps); empty for range scans far below the head. */
  headers: readonly BlockHeader[];
  previous: Cursor;
  next: Cursor;
  /** The newest block known canonical: confirmations and finality are counted from it. */
  head: bigint;
  /** Window rows at or below this block number are dropped (older than any reorg we follow). */
  pruneAtOrBelow: bigint;
}

/**
 * Stores one step's events and headers, moves the matching batches to included or final
 * through the ledger, finalizes what became deep enough, and moves the cursor from
 * `previous` to `next` (compare-and-set), all in one transaction: after a crash either all
 * of it happened or none of it did. `fence` (the active indexer's, src/leader) runs first and
 * rejects the transaction once another indexer has taken over.
 */
export async function commitBlocks(
  db: Kysely<Database>,
  key: CursorKey,
  scope: LedgerScope,
  input: CommitInput,
  fence?: Fence,
): Promise<ApplyResult> {
  const { events, headers } = input;
  return db.transaction().execute(async (tx) => {
    await fence?.(tx);
    const ledger = createBatchLedger(tx, scope);
    const result: ApplyResult = {
      inserted: 0,
      included: [],
      finalized: [],
      unknown: 0,
      mismatched: [],
    };
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
    for (let i = 0; i < headers.length; i += CHUNK) {
      await tx
        .insertInto('indexer_blocks')
        .values(
          headers.slice(i, i + CHUNK).map((header) => ({
            chain_id: key.chainId,
            contract: key.contract,
            block_number: header.blockNumber.toString(),
            block_hash: header.blockHash,
            parent_hash: header.parentHash,
          })),
        )
        .onConflict((oc) =>
          oc.columns(['chain_id', 'contract', 'block_number']).doUpdateSet((eb) => ({
            block_hash: eb.ref('excluded.block_hash'),
            parent_hash: eb.ref('excluded.parent_hash'),
          })),
        )
        .execute();
    }

    const matched: AnchorEvent[] = [];
    for (let i = 0; i < events.length; i += CHUNK) {
      const slice = events.slice(i, i + CHUNK);
      // One array parameter instead of a thousand: much cheaper to plan and bind.
      const known = await tx
        .selectFrom('batches')
        .select(['batch_id', 'merkle_root', 'record_count'])
        .where(sql<boolean>`batch_id = any(${slice.map((event) => event.batchId)}::text[])`)
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
      const changed = await ledger.markIncluded(
        matched.slice(i, i + CHUNK).map((event) => ({
          batchId: event.batchId,
          txHash: event.txHash,
          blockNumber: event.blockNumber,
          blockHash: event.blockHash,
          logIndex: event.logIndex,
        })),
        input.head,
      );
      result.included.push(...changed);
    }
    result.finalized = await ledger.finalize(input.head);

    await tx
      .deleteFrom('indexer_blocks')
      .where('chain_id', '=', key.chainId)
      .where('contract', '=', key.contract)
      .where('block_number', '<=', input.pruneAtOrBelow.toString())
      .execute();
    await moveCursor(tx, key, input.previous, input.next);
    return result;
  });
}

/** The header window, newest first. */
export async function readWindow(db: Kysely<Database>, key: CursorKey): Promise<BlockHeader[]> {
  const rows = await db
    .selectFrom('indexer_blocks')
    .select(['block_number', 'block_hash', 'parent_hash'])
    .where('chain_id', '=', key.chainId)
    .where('contract', '=', key.contract)
    .orderBy('block_number', 'desc')
    .execute();
  return rows.map((row) => ({
    blockNumber: BigInt(row.block_number),
    blockHash: row.block_hash as `0x${string}`,
    parentHash: row.parent_hash as `0x${string}`,
  }));
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
 * Undoes everything read above `target` (a reorg's common ancestor): deletes those events
 * and window headers, puts their batches back to `sent` through the ledger (which writes
 * the `reorged` receipt notices), and moves the cursor down, in one transaction.
 */
export async function rewind(
  db: Kysely<Database>,
  key: CursorKey,
  scope: LedgerScope,
  previous: Cursor,
  target: Cursor,
  fence?: Fence,
): Promise<{ batchIds: string[]; deep: string[]; events: number }> {
  return db.transaction().execute(async (tx) => {
    await fence?.(tx);
    const gone = await tx
      .deleteFrom('anchor_events')
      .where('chain_id', '=', key.chainId)
      .where('contract', '=', key.contract)
      .where('block_number', '>', target.blockNumber.toString())
      .executeTakeFirst();
    await tx
      .deleteFrom('indexer_blocks')
      .where('chain_id', '=', key.chainId)
      .where('contract', '=', key.contract)
      .where('block_number', '>', target.blockNumber.toString())
      .execute();
    const reverted = await createBatchLedger(tx, scope).revertAbove(target.blockNumber);
    await moveCursor(tx, key, previous, target);
    return { ...reverted, events: Number(gone.numDeletedRows) };
  });
}
