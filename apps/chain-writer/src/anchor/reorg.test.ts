import { streamAnchorAbi } from '@streamanchor/contracts';
import { TEST_DATABASE_KINDS } from '@streamanchor/testing';
import type { Hex } from 'viem';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWriterFixture, makeRecords, type WriterFixture, waitFor } from '../test-fixtures';

// anvil_reorg [depth, []] replaces the last `depth` blocks with empty ones and drops their
// transactions (they do NOT go back to the pool): only the writer can bring them back.
describe.each(TEST_DATABASE_KINDS)('anchor submitter across reorgs on %s', (kind) => {
  let fx: WriterFixture;

  beforeEach(async () => {
    fx = await createWriterFixture(kind);
  });

  afterEach(async () => {
    await fx.close();
  });

  const rpc = (method: string, params: unknown[] = []) =>
    fx.publicClient.request({ method: method as never, params: params as never });

  const batchRow = (batchId: string) =>
    fx.database.db
      .selectFrom('batches')
      .selectAll()
      .where('batch_id', '=', batchId)
      .executeTakeFirstOrThrow();

  /** Sends a fresh batch of records and waits until their batch is anchored; its id. */
  const sendAndAwaitAnchor = async () => {
    const records = makeRecords(2);
    await fx.send(records);
    const batchId = await waitFor('next batch', async () => {
      const row = await fx.database.db
        .selectFrom('record_leaves')
        .select('batch_id')
        .where('record_id', '=', records[0]!.recordId)
        .executeTakeFirst();
      return row?.batch_id ?? undefined;
    });
    await waitFor('next batch anchored', () => fx.isAnchored(batchId));
    return batchId as Hex;
  };

  /** Plays the indexer that saw these batches' BatchAnchored events: markIncluded. */
  const markIncluded = async (batchIds: Hex[]) => {
    const logs = await fx.publicClient.getContractEvents({
      address: fx.contract,
      abi: streamAnchorAbi,
      eventName: 'BatchAnchored',
      fromBlock: fx.deploymentBlock,
      toBlock: 'latest',
    });
    const head = await fx.publicClient.getBlockNumber({ cacheTime: 0 });
    const anchorings = logs
      .filter((log) => batchIds.includes(log.args.batchId!))
      .map((log) => ({
        batchId: log.args.batchId!,
        txHash: log.transactionHash,
        blockNumber: log.blockNumber,
        blockHash: log.blockHash,
        logIndex: log.logIndex,
      }));
    expect(anchorings).toHaveLength(batchIds.length);
    const changed = await fx.ledger().markIncluded(anchorings, head);
    expect(changed.sort()).toEqual([...batchIds].sort());
    for (const id of batchIds) expect((await batchRow(id)).status).toBe('included');
    return anchorings;
  };

  /** Reorgs away every block from `firstBlock` on (same height, empty blocks). */
  const reorgFrom = async (firstBlock: bigint) => {
    const head = await fx.publicClient.getBlockNumber({ cacheTime: 0 });
    await rpc('anvil_reorg', [Number(head - firstBlock + 1n), []]);
  };

  /** Mines while waiting, until every batch is anchored (only re-sent txs can anchor them). */
  const mineUntilAnchored = (batchIds: Hex[]) =>
    waitFor(
      'every batch anchored again',
      async () => {
        await rpc('evm_mine');
        for (const id of batchIds) if (!(await fx.isAnchored(id))) return false;
        return true;
      },
      { intervalMs: 250 },
    );

  const expectAnchoredOnceEach = async (batchIds: Hex[]) => {
    for (const id of batchIds) {
      expect(await fx.isAnchored(id)).toBe(true);
      const logs = await fx.anchorLogs(id);
      expect(logs).toHaveLength(1);
      // The very bytes signed before the reorg: re-broadcast, not re-signed.
      expect(logs[0]!.txHash).toBe((await batchRow(id)).tx_hash);
    }
    expect(await fx.anchorLogs()).toHaveLength(batchIds.length);
  };

  it('default: included batches whose txs a reorg dropped are re-broadcast by the running writer, each anchored once', async () => {
    const app = fx.app();
    await app.start();
    const batchIds = [
      await sendAndAwaitAnchor(),
      await sendAndAwaitAnchor(),
      await sendAndAwaitAnchor(),
    ];
    const anchorings = await markIncluded(batchIds);
    const nonceBefore = await fx.signerNonce();
    expect(nonceBefore).toBe(4); // deploy + 3 anchors

    // Hold mining so the test sees the chain without the anchors before the writer heals it.
    await rpc('evm_setAutomine', [false]);
    await reorgFrom(anchorings[0]!.blockNumber);
    for (const id of batchIds) expect(await fx.isAnchored(id)).toBe(false);
    expect(await fx.signerNonce()).toBe(1);
    for (const a of anchorings) {
      expect(
        await fx.publicClient.getTransactionReceipt({ hash: a.txHash }).catch(() => undefined),
      ).toBeUndefined();
    }

    await mineUntilAnchored(batchIds);
    await expectAnchoredOnceEach(batchIds);
    expect(await fx.signerNonce()).toBe(nonceBefore); // the same three nonces, nothing extra
    // The writer never rewrote the indexer's rows: healing came from the chain, not a flag.
    for (const id of batchIds) expect((await batchRow(id)).status).toBe('included');
  });

  it('behavior: a nonce gap left by a reorg (a tx no batch holds) is filled, and the anchor txs waiting behind it are mined', async () => {
    const app = fx.app();
    await app.start();
    const first = await sendAndAwaitAnchor(); // nonce 1
    // Someone else signs with the writer's key (nonce 2): no batch row holds that nonce.
    const manual = await fx.walletClient.sendTransaction({
      to: fx.walletClient.account.address,
      value: 0n,
    });
    await fx.publicClient.waitForTransactionReceipt({ hash: manual });
    const second = await sendAndAwaitAnchor(); // nonce 3
    expect(Number((await batchRow(first)).nonce)).toBe(1);
    expect(Number((await batchRow(second)).nonce)).toBe(3);
    const anchorings = await markIncluded([first, second]);

    await rpc('evm_setAutomine', [false]);
    await reorgFrom(anchorings[0]!.blockNumber);
    expect(await fx.signerNonce()).toBe(1);
    expect(
      await fx.publicClient.getTransactionReceipt({ hash: manual }).catch(() => undefined),
    ).toBeUndefined();

    // Without a filler at nonce 2 the second anchor (nonce 3) could never be mined.
    await mineUntilAnchored([first, second]);
    await expectAnchoredOnceEach([first, second]);
    expect(await fx.signerNonce()).toBe(4); // deploy, first, the filler, second
    // Nonce 2 is now a 0-value self-transfer of the writer's.
    const head = await fx.publicClient.getBlockNumber({ cacheTime: 0 });
    let filler: { to: string | null; value: bigint } | undefined;
    for (let n = anchorings[0]!.blockNumber; n <= head && !filler; n++) {
      const block = await fx.publicClient.getBlock({ blockNumber: n, includeTransactions: true });
      filler = block.transactions.find((t) => t.from.toLowerCase() === app.signer && t.nonce === 2);
    }
    expect(filler).toMatchObject({ to: app.signer, value: 0n });
  });

  it('behavior: a reorg while the writer is down, then the indexer reverts the batches to sent → the restarted writer re-sends them, each anchored once', async () => {
    const first = fx.app();
    await first.start();
    const batchIds = [await sendAndAwaitAnchor(), await sendAndAwaitAnchor()];
    const anchorings = await markIncluded(batchIds);
    await first.stop();

    await rpc('evm_setAutomine', [false]);
    await reorgFrom(anchorings[0]!.blockNumber);
    const ancestor = anchorings[0]!.blockNumber - 1n;
    const reverted = await fx.ledger().revertAbove(ancestor);
    expect(reverted.batchIds.sort()).toEqual([...batchIds].sort());
    for (const id of batchIds) expect((await batchRow(id)).status).toBe('sent');

    const second = fx.app();
    await second.start();
    await mineUntilAnchored(batchIds);
    await expectAnchoredOnceEach(batchIds);
    expect(await fx.signerNonce()).toBe(3);

    // Later batches still flow, with the next nonce.
    await rpc('evm_setAutomine', [true]);
    const next = await sendAndAwaitAnchor();
    expect(Number((await batchRow(next)).nonce)).toBe(3);
    expect(await fx.anchorLogs()).toHaveLength(3);
  });
});
