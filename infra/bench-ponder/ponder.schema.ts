import { onchainTable, primaryKey } from 'ponder';

/** One row per BatchAnchored log: the same columns as the indexer's anchor_events. */
export const anchorEvent = onchainTable(
  'anchor_event',
  (t) => ({
    blockHash: t.hex().notNull(),
    logIndex: t.integer().notNull(),
    blockNumber: t.bigint().notNull(),
    txHash: t.hex().notNull(),
    batchId: t.hex().notNull(),
    merkleRoot: t.hex().notNull(),
    recordCount: t.integer().notNull(),
    writer: t.hex().notNull(),
  }),
  (table) => ({ pk: primaryKey({ columns: [table.blockHash, table.logIndex] }) }),
);
