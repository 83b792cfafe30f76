import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { streamAnchorAbi } from '@streamanchor/contracts';
import { readBatchContent } from '@streamanchor/db';
import { LEAF_ENCODING, leafHash, leafValue } from '@streamanchor/protocol';
import { getFreePort, TEST_DATABASE_KINDS } from '@streamanchor/testing';
import type { Hex } from 'viem';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChainIdMismatchError } from './errors';
import { INSERT_CHUNK_ROWS } from './ingest';
import { createWriterFixture, makeRecords, type WriterFixture, waitFor } from './test-fixtures';

describe.each(TEST_DATABASE_KINDS)('chain-writer on %s', (kind) => {
  let fx: WriterFixture;

  beforeEach(async () => {
    fx = await createWriterFixture(kind);
  });

  afterEach(async () => {
    await fx.close();
  });

  const batches = () => fx.database.db.selectFrom('batches').selectAll().orderBy('seq').execute();

  it('default: stores a records job, builds a batch and anchors it; every proof verifies off and on chain', async () => {
    const opsPort = await getFreePort();
    const app = fx.app({ env: { OPS_PORT: String(opsPort) } });
    const metric = async (series: string) => {
      const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? 0 : Number(line.slice(series.length + 1));
    };
    await app.start();
    const [storedBefore, latencyBefore] = [
      await metric('streamanchor_writer_records_stored_total'),
      await metric('streamanchor_writer_anchor_latency_seconds_count'),
    ];
    const records = makeRecords(25);
    const job = await fx.send(records);
    expect(await job.waitUntilFinished(fx.queueEvents, 30_000)).toEqual({ stored: 25 });

    const [batch] = await waitFor('a batch', async () => {
      const rows = await batches();
      return rows.length > 0 ? rows : undefined;
    });
    await waitFor('the batch anchored on chain', () => fx.isAnchored(batch!.batch_id));
    const rows = await batches();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      status: 'sent',
      record_count: 25,
      chain_id: 31337,
      contract: fx.contract,
      signer: app.signer,
    });
    expect(Number(rows[0]!.nonce)).toBe(1); // nonce 0 deployed the contract
    expect(rows[0]!.tx_hash).toMatch(/^0x[0-9a-f]{64}$/);

    const logs = await fx.anchorLogs(batch!.batch_id);
    expect(logs).toHaveLength(1);
    expect(logs[0]!.merkleRoot).toBe(rows[0]!.merkle_root);
    expect(logs[0]!.recordCount).toBe(25);
    expect(logs[0]!.txHash).toBe(rows[0]!.tx_hash);

    const stored = await fx.recordsOf(batch!.batch_id);
    expect(stored).toHaveLength(25);
    // Proofs are not stored: the ledger rebuilds them from the records (and checks the root).
    const { rows: proven } = await readBatchContent(fx.database.db, batch!.batch_id);
    const root = rows[0]!.merkle_root as Hex;
    // Records keep their ingest order in the batch: leaf_index i is the i-th record sent.
    expect(stored.map((r) => r.record_id)).toEqual(records.map((r) => r.recordId));
    for (const [i, row] of stored.entries()) {
      const fields = {
        recordId: row.record_id as Hex,
        topic: row.topic,
        subject: row.subject,
        contentHash: row.content_hash as Hex,
        acceptedAt: Number(row.accepted_at),
      };
      expect(row.leaf_index).toBe(i);
      expect(row.leaf_hash).toBe(leafHash(fields));
      expect(fields.acceptedAt).toBe(records[i]!.acceptedAt);
      expect(row.payload).toBe(records[i]!.payload);
      const proof = [...proven[i]!.proof];
      expect(StandardMerkleTree.verify(root, [...LEAF_ENCODING], leafValue(fields), proof)).toBe(
        true,
      );
      const onChain = await fx.publicClient.readContract({
        address: fx.contract,
        abi: streamAnchorAbi,
        functionName: 'verifyRecord',
        args: [
          row.batch_id as Hex,
          proof,
          fields.recordId,
          fields.topic,
          fields.subject,
          fields.contentHash,
          BigInt(fields.acceptedAt),
        ],
      });
      expect(onChain).toBe(true);
    }
    // A proof for another record's fields does not verify (the check can fail).
    const first = stored[0]!;
    expect(
      StandardMerkleTree.verify(
        root,
        [...LEAF_ENCODING],
        leafValue({
          recordId: first.record_id as Hex,
          topic: first.topic,
          subject: 'mallory',
          contentHash: first.content_hash as Hex,
          acceptedAt: Number(first.accepted_at),
        }),
        [...proven[0]!.proof],
      ),
    ).toBe(false);

    // The ops server: records stored, the anchor latency of each record, readiness.
    expect(await metric('streamanchor_writer_records_stored_total')).toBe(storedBefore + 25);
    await expect
      .poll(() => metric('streamanchor_writer_anchor_latency_seconds_count'), { timeout: 10_000 })
      .toBe(latencyBefore + 25);
    expect(await metric('streamanchor_writer_batches{status="sent"}')).toBe(1);
    expect(await metric('streamanchor_writer_batches_built_total')).toBeGreaterThanOrEqual(1);
    const ready = await fetch(`http://127.0.0.1:${opsPort}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { status: 'ready' }]);
  });

  it('behavior: the same records delivered twice are stored once', async () => {
    const app = fx.app({ env: { BATCH_MAX_AGE_MS: '3600000' } });
    await app.start();
    const records = makeRecords(10);
    const first = await fx.send(records);
    expect(await first.waitUntilFinished(fx.queueEvents, 30_000)).toEqual({ stored: 10 });
    // The same job id again, once the first is gone (the relay's jobs use removeOnComplete) …
    await first.remove();
    const again = await fx.send(records);
    expect(await again.waitUntilFinished(fx.queueEvents, 30_000)).toEqual({ stored: 0 });
    // … and an overlapping job under another id.
    const more = makeRecords(3);
    const overlap = await fx.send([...records.slice(5), ...more], 'overlap-job');
    expect(await overlap.waitUntilFinished(fx.queueEvents, 30_000)).toEqual({ stored: 3 });

    const rows = await fx.database.db
      .selectFrom('records')
      .select(['record_id'])
      .orderBy('seq')
      .execute();
    expect(rows.map((r) => r.record_id)).toEqual([...records, ...more].map((r) => r.recordId));
  });

  it('behavior: a job larger than one INSERT chunk is stored whole, in order', async () => {
    // No batch is due here (limits far away): this is about ingest only.
    const app = fx.app({ env: { BATCH_MAX_RECORDS: '65536', BATCH_MAX_AGE_MS: '3600000' } });
    await app.start();
    const records = makeRecords(INSERT_CHUNK_ROWS * 2 + 17);
    const job = await fx.send(records);
    expect(await job.waitUntilFinished(fx.queueEvents, 60_000)).toEqual({ stored: records.length });
    const rows = await fx.database.db
      .selectFrom('records')
      .select('record_id')
      .orderBy('seq')
      .execute();
    expect(rows.map((r) => r.record_id)).toEqual(records.map((r) => r.recordId));
  });

  it('behavior: a batch is cut as soon as BATCH_MAX_RECORDS records wait', async () => {
    // The age limit is an hour: only the size limit can cut a batch here.
    const app = fx.app({ env: { BATCH_MAX_RECORDS: '5', BATCH_MAX_AGE_MS: '3600000' } });
    await app.start();
    const records = makeRecords(12);
    await (await fx.send(records.slice(0, 7))).waitUntilFinished(fx.queueEvents, 30_000);
    await (await fx.send(records.slice(7))).waitUntilFinished(fx.queueEvents, 30_000);

    const rows = await waitFor('two batches', async () => {
      const found = await batches();
      return found.length >= 2 ? found : undefined;
    });
    expect(rows).toHaveLength(2);
    expect(rows.map((b) => b.record_count)).toEqual([5, 5]);
    expect((await fx.recordsOf(rows[0]!.batch_id)).map((r) => r.record_id)).toEqual(
      records.slice(0, 5).map((r) => r.recordId),
    );
    expect((await fx.recordsOf(rows[1]!.batch_id)).map((r) => r.record_id)).toEqual(
      records.slice(5, 10).map((r) => r.recordId),
    );
    const waiting = await fx.database.db
      .selectFrom('record_leaves')
      .select('record_id')
      .where('batch_id', 'is', null)
      .orderBy('seq')
      .execute();
    expect(waiting.map((r) => r.record_id)).toEqual(records.slice(10).map((r) => r.recordId));
    for (const row of rows) await waitFor('anchored', () => fx.isAnchored(row.batch_id));
    expect(await fx.anchorLogs()).toHaveLength(2);
  });

  it('behavior: a non-empty batch is cut once its oldest record reaches BATCH_MAX_AGE_MS', async () => {
    // The size limit is far away: only age can cut this batch.
    const app = fx.app({ env: { BATCH_MAX_RECORDS: '1000', BATCH_MAX_AGE_MS: '300' } });
    await app.start();
    const records = makeRecords(3);
    await (await fx.send(records)).waitUntilFinished(fx.queueEvents, 30_000);
    const [batch] = await waitFor('a batch cut by age', async () => {
      const found = await batches();
      return found.length > 0 ? found : undefined;
    });
    expect(batch!.record_count).toBe(3);
    await waitFor('anchored', () => fx.isAnchored(batch!.batch_id));
  });

  it('error: a wrong CHAIN_ID fails start before anything is consumed', async () => {
    const app = fx.app({ env: { CHAIN_ID: '1' } });
    const error = await app.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ChainIdMismatchError);
    expect((error as ChainIdMismatchError).shortMessage).toBe(
      'RPC reports chain id 31337, but CHAIN_ID is 1',
    );
    expect((error as ChainIdMismatchError).details).toMatchObject({ expected: 1, actual: 31337 });
    // Nothing consumes the queue: a job stays waiting.
    const job = await fx.send(makeRecords(1));
    expect(await job.getState()).toBe('waiting');
  });

  it('error: a malformed record is dead-lettered, an empty job fails at once; neither harms another job', async () => {
    const app = fx.app({ env: { BATCH_MAX_AGE_MS: '3600000' } });
    await app.start();
    const good = makeRecords(4);
    const bad = await fx.queue.add(
      'recordBatch',
      { records: [{ ...good[0]!, recordId: 'not-a-record-id' }] } as never,
      { jobId: 'malformed-job', attempts: 5, backoff: { type: 'fixed', delay: 100 } },
    );
    const empty = await fx.queue.add(
      'recordBatch',
      { records: [] },
      { jobId: 'empty-job', attempts: 5 },
    );
    const ok = await fx.send(good);
    // The bad record is isolated (dead_letters), not retried for days: its job completes.
    expect(await bad.waitUntilFinished(fx.queueEvents, 30_000)).toEqual({
      stored: 0,
      deadLettered: 1,
    });
    await expect(empty.waitUntilFinished(fx.queueEvents, 30_000)).rejects.toThrow(
      /malformed records job/,
    );
    expect(await ok.waitUntilFinished(fx.queueEvents, 30_000)).toEqual({ stored: 4 });
    const failed = await fx.queue.getJob('empty-job');
    expect(failed?.attemptsMade).toBe(1);
    expect(await failed?.getState()).toBe('failed');
    const letters = await fx.database.db.selectFrom('dead_letters').selectAll().execute();
    expect(letters).toMatchObject([
      { job_id: 'malformed-job', item_index: 0, record_id: 'not-a-record-id' },
    ]);
    expect(letters[0]!.reason).toMatch(/^schema: \/recordId/);
    const rows = await fx.database.db
      .selectFrom('records')
      .select('record_id')
      .orderBy('seq')
      .execute();
    expect(rows.map((r) => r.record_id)).toEqual(good.map((r) => r.recordId));
  });
});
