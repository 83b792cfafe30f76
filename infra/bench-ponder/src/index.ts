import { ponder } from 'ponder:registry';
import { anchorEvent } from 'ponder:schema';

// Each BatchAnchored log becomes one row, as the indexer's anchor_events.
ponder.on('StreamAnchor:BatchAnchored', async ({ event, context }) => {
  await context.db.insert(anchorEvent).values({
    blockHash: event.block.hash,
    logIndex: event.log.logIndex,
    blockNumber: event.block.number,
    txHash: event.transaction.hash,
    batchId: event.args.batchId,
    merkleRoot: event.args.merkleRoot,
    recordCount: event.args.recordCount,
    writer: event.args.writer,
  });
});
