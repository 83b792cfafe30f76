import { TEST_DATABASE_KINDS } from '@streamanchor/testing';
import { type Hex, parseTransaction } from 'viem';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  crashAt,
  createWriterFixture,
  makeRecords,
  type WriterFixture,
  waitFor,
} from '../test-fixtures';

describe.each(TEST_DATABASE_KINDS)('anchor submitter on %s', (kind) => {
  let fx: WriterFixture;

  beforeEach(async () => {
    fx = await createWriterFixture(kind);
  });

  afterEach(async () => {
    await fx.close();
  });

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
    return batchId;
  };

  it('behavior: a crash after the signed tx was stored but before broadcast → the restart broadcasts the stored bytes, anchored once', async () => {
    const crash = crashAt('afterPersist');
    const first = fx.app({ wrapEffects: crash.wrapEffects });
    await first.start();
    await fx.send(makeRecords(7));
    const anchor = await crash.reached();
    await first.stop();

    const stored = await batchRow(anchor.batchId);
    expect(stored).toMatchObject({
      status: 'sent',
      tx_hash: anchor.txHash,
      raw_tx: anchor.rawTx,
      nonce: expect.anything(),
    });
    expect(Number(stored.nonce)).toBe(1);
    // Never broadcast: the node does not know the tx and the batch is not anchored.
    expect(
      await fx.publicClient.getTransaction({ hash: anchor.txHash }).catch(() => undefined),
    ).toBeUndefined();
    expect(await fx.isAnchored(anchor.batchId)).toBe(false);

    const second = fx.app();
    await second.start();
    await waitFor('anchored after restart', () => fx.isAnchored(anchor.batchId));
    const logs = await fx.anchorLogs(anchor.batchId);
    expect(logs).toHaveLength(1);
    // The very transaction signed before the crash was mined: same bytes, same nonce.
    expect(logs[0]!.txHash).toBe(anchor.txHash);
    expect(await fx.signerNonce()).toBe(2); // deploy + one anchor

    // Later batches still flow, with the next nonce.
    const next = await sendAndAwaitAnchor();
    expect(Number((await batchRow(next)).nonce)).toBe(2);
    expect(await fx.anchorLogs()).toHaveLength(2);
  });

  it('behavior: a crash after broadcast (tx mined) → the restart sends no second anchor', async () => {
    const crash = crashAt('afterBroadcast');
    const first = fx.app({ wrapEffects: crash.wrapEffects });
    await first.start();
    await fx.send(makeRecords(3));
    const anchor = await crash.reached();
    await first.stop();
    await waitFor('mined', () => fx.isAnchored(anchor.batchId));

    const second = fx.app();
    await second.start();
    // A later batch anchored by the restarted writer proves it went over the first one.
    await sendAndAwaitAnchor();
    expect(await fx.anchorLogs(anchor.batchId)).toHaveLength(1);
    // deploy + exactly two anchor txs: no second (reverting) anchor for the first batch.
    expect(await fx.signerNonce()).toBe(3);
    expect((await batchRow(anchor.batchId)).tx_hash).toBe(anchor.txHash);
  });

  it('behavior: a batch the database still calls built but the chain has anchored is not sent again', async () => {
    const crash = crashAt('afterBroadcast');
    const first = fx.app({ wrapEffects: crash.wrapEffects });
    await first.start();
    await fx.send(makeRecords(3));
    const anchor = await crash.reached();
    await first.stop();
    await waitFor('mined', () => fx.isAnchored(anchor.batchId));
    // Rewind the row as if the database had lost the 'sent' write.
    await fx.database.db
      .updateTable('batches')
      .set({
        status: 'built',
        signer: null,
        nonce: null,
        raw_tx: null,
        tx_hash: null,
        sent_at: null,
      })
      .where('batch_id', '=', anchor.batchId)
      .execute();

    const second = fx.app();
    await second.start();
    const row = await waitFor('marked sent', async () => {
      const found = await batchRow(anchor.batchId);
      return found.status === 'sent' ? found : undefined;
    });
    expect(row.tx_hash).toBeNull();
    expect(await fx.anchorLogs(anchor.batchId)).toHaveLength(1);
    expect(await fx.signerNonce()).toBe(2); // deploy + the one anchor: nothing new was sent
  });

  it('behavior: a dropped anchor tx is re-broadcast and anchored once', async () => {
    await fx.publicClient.request({ method: 'evm_setAutomine' as never, params: [false] as never });
    const app = fx.app();
    await app.start();
    await fx.send(makeRecords(4));
    const sent = await waitFor('a pending anchor tx', async () => {
      const row = await fx.database.db
        .selectFrom('batches')
        .selectAll()
        .where('status', '=', 'sent')
        .executeTakeFirst();
      if (!row?.tx_hash) return undefined;
      const pending = await fx.publicClient
        .getTransaction({ hash: row.tx_hash as Hex })
        .catch(() => undefined);
      return pending ? row : undefined;
    });
    const dropped = await fx.publicClient.request({
      method: 'anvil_dropTransaction' as never,
      params: [sent.tx_hash] as never,
    });
    expect(dropped).toBe(sent.tx_hash);

    // Mine as we wait: only a re-broadcast tx can anchor the batch.
    await waitFor(
      'anchored after the drop',
      async () => {
        await fx.publicClient.request({ method: 'evm_mine' as never });
        return fx.isAnchored(sent.batch_id);
      },
      { intervalMs: 250 },
    );
    expect(await fx.anchorLogs(sent.batch_id)).toHaveLength(1);
    expect(await fx.signerNonce()).toBe(2);
  });

  it('behavior: two writers with the same key on one database anchor every batch exactly once', async () => {
    const env = { BATCH_MAX_RECORDS: '3', BATCH_MAX_AGE_MS: '100' };
    const [a, b] = [fx.app({ env }), fx.app({ env })];
    await Promise.all([a.start(), b.start()]);
    const records = makeRecords(12);
    for (let i = 0; i < records.length; i += 3) await fx.send(records.slice(i, i + 3));
    const rows = await waitFor('all records batched', async () => {
      const found = await fx.database.db.selectFrom('batches').selectAll().orderBy('seq').execute();
      const total = found.reduce((sum, row) => sum + row.record_count, 0);
      return total === records.length ? found : undefined;
    });
    for (const row of rows) await waitFor('anchored', () => fx.isAnchored(row.batch_id));
    const logs = await fx.anchorLogs();
    expect(logs.map((log) => log.batchId).sort()).toEqual(rows.map((row) => row.batch_id).sort());
    // Only one of them owned the nonce: one tx per batch, nothing wasted.
    expect(await fx.signerNonce()).toBe(1 + rows.length);
  });

  it('behavior: a tx not mined within TX_CONFIRM_TIMEOUT_MS is replaced (same nonce, higher fees), anchored once', async () => {
    await fx.publicClient.request({ method: 'evm_setAutomine' as never, params: [false] as never });
    const app = fx.app({ env: { TX_CONFIRM_TIMEOUT_MS: '1000' } });
    await app.start();
    await fx.send(makeRecords(2));
    const first = await waitFor('a pending anchor tx', async () => {
      const row = await fx.database.db
        .selectFrom('batches')
        .selectAll()
        .where('status', '=', 'sent')
        .executeTakeFirst();
      return row?.tx_hash ? row : undefined;
    });
    const replaced = await waitFor('a replacement tx', async () => {
      const row = await fx.database.db
        .selectFrom('batches')
        .selectAll()
        .where('batch_id', '=', first.batch_id)
        .executeTakeFirstOrThrow();
      return row.tx_hash !== first.tx_hash ? row : undefined;
    });
    expect(Number(replaced.nonce)).toBe(Number(first.nonce));
    const [oldTx, newTx] = [
      parseTransaction(first.raw_tx as Hex),
      parseTransaction(replaced.raw_tx as Hex),
    ];
    expect(newTx.maxFeePerGas! > oldTx.maxFeePerGas!).toBe(true);
    expect(newTx.maxPriorityFeePerGas! > oldTx.maxPriorityFeePerGas!).toBe(true);

    await fx.publicClient.request({ method: 'evm_setAutomine' as never, params: [true] as never });
    await waitFor(
      'anchored',
      async () => {
        await fx.publicClient.request({ method: 'evm_mine' as never });
        return fx.isAnchored(first.batch_id);
      },
      { intervalMs: 250 },
    );
    const logs = await fx.anchorLogs(first.batch_id);
    expect(logs).toHaveLength(1);
    expect(await fx.signerNonce()).toBe(2);
  });
});
