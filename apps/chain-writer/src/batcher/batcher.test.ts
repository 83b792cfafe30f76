import type { DatabaseHandle } from '@streamanchor/db';
import { createLogger } from '@streamanchor/service-kit';
import { createTestDatabase } from '@streamanchor/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storeJobs } from '../ingest/store';
import { makeRecords } from '../test-fixtures';
import { type BuiltBatch, batchState, createBatcher } from './index';

const logger = createLogger({ service: 'batcher-test', level: 'silent' });
const options = { maxRecords: 50, maxAgeMs: 400, chainId: 31337, contract: `0x${'ab'.repeat(20)}` };
// Polling alone would take a minute: anything sooner is the batcher's own planning.
const intervalMs = 60_000;

describe('batcher', () => {
  let handle: DatabaseHandle;
  beforeEach(async () => {
    handle = await createTestDatabase('pglite');
  });
  afterEach(() => handle.close());

  function started(cut = options) {
    const built: { batch: BuiltBatch; at: number }[] = [];
    const batcher = createBatcher({
      db: handle.db,
      logger,
      options: cut,
      intervalMs,
      onBuilt: (batch) => built.push({ batch, at: Date.now() }),
    });
    batcher.start();
    return { batcher, built };
  }
  const until = async (check: () => boolean) => {
    const deadline = Date.now() + 20_000;
    while (!check() && Date.now() < deadline) await new Promise((done) => setTimeout(done, 20));
  };

  it('default: stored records are cut when the oldest is maxAgeMs old, without waiting for a poll', async () => {
    const { batcher, built } = started();
    try {
      // Let the first (empty) check pass: the batcher then sleeps for the whole interval.
      await new Promise((done) => setTimeout(done, 100));
      const storedAt = Date.now();
      await storeJobs(handle.db, [{ jobId: 'a', items: makeRecords(3) }]);
      batcher.recordsStored(3);
      // More records while the age cut is planned: no check of their own, same batch.
      await storeJobs(handle.db, [{ jobId: 'b', items: makeRecords(2) }]);
      batcher.recordsStored(2);
      await until(() => built.length > 0);
      expect(built.map((b) => b.batch.recordCount)).toEqual([5]);
      expect(built[0]!.at - storedAt).toBeGreaterThanOrEqual(options.maxAgeMs - 50);
    } finally {
      await batcher.stop();
    }
  });

  it('behavior: enough records for a size cut wake it at once', async () => {
    // No age cut within the test: only the size can cut.
    const { batcher, built } = started({ ...options, maxAgeMs: 60_000 });
    try {
      await new Promise((done) => setTimeout(done, 100));
      await storeJobs(handle.db, [{ jobId: 'a', items: makeRecords(3) }]);
      batcher.recordsStored(3);
      await storeJobs(handle.db, [{ jobId: 'b', items: makeRecords(options.maxRecords) }]);
      batcher.recordsStored(options.maxRecords);
      await until(() => built.length > 0);
      expect(built[0]!.batch.recordCount).toBe(options.maxRecords);
    } finally {
      await batcher.stop();
    }
  });

  it('behavior: batchState says how long the oldest record has waited', async () => {
    expect(await batchState(handle.db, options)).toEqual({
      due: false,
      waiting: 0,
      oldestAgeMs: 0,
      unsigned: false,
    });
    await storeJobs(handle.db, [{ jobId: 'a', items: makeRecords(2) }]);
    await new Promise((done) => setTimeout(done, 50));
    const state = await batchState(handle.db, options);
    expect(state).toMatchObject({ due: false, waiting: 2, unsigned: false });
    expect(state.oldestAgeMs).toBeGreaterThanOrEqual(40);
  });
});
