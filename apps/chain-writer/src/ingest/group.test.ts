import type { DatabaseHandle } from '@streamanchor/db';
import { createTestDatabase, TEST_DATABASE_KINDS } from '@streamanchor/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { batchState, cutBatch } from '../batcher';
import { makeRecords } from '../test-fixtures';
import { storeJobs } from './store';
import { createGroupCommit } from './worker';

describe.each(TEST_DATABASE_KINDS)('group commit on %s', (kind) => {
  let handle: DatabaseHandle;
  beforeEach(async () => {
    handle = await createTestDatabase(kind);
  });
  afterEach(() => handle.close());

  const storedIds = async () =>
    (await handle.db.selectFrom('records').select('record_id').orderBy('seq').execute()).map(
      (row) => row.record_id,
    );

  it('default: several jobs in one transaction, results per job, a record shared by two jobs stored once', async () => {
    const [a, b, c] = [makeRecords(5), makeRecords(3), makeRecords(4)];
    const results = await storeJobs(handle.db, [
      { jobId: 'a', items: a },
      // b repeats a's last record and holds one item that is no record.
      { jobId: 'b', items: [...b, a[4]!, { nope: true }] },
      { jobId: 'c', items: c },
    ]);
    expect(results.map((r) => [r.stored, r.deadLetters.map((l) => l.itemIndex)])).toEqual([
      [5, []],
      [3, [4]],
      [4, []],
    ]);
    expect(await storedIds()).toEqual([...a, ...b, ...c].map((r) => r.recordId));
    const letters = await handle.db.selectFrom('dead_letters').selectAll().execute();
    expect(letters.map((l) => [l.job_id, l.item_index])).toEqual([['b', 4]]);
    // Again (BullMQ retried the jobs): nothing new, nothing twice.
    const again = await storeJobs(handle.db, [
      { jobId: 'a', items: a },
      { jobId: 'b', items: [...b, a[4]!, { nope: true }] },
    ]);
    expect(again.map((r) => [r.stored, r.deadLetters.length])).toEqual([
      [0, 0],
      [0, 0],
    ]);
  });

  it('behavior: a group whose insert fails on one job’s data stores every other job whole', async () => {
    await sql`alter table records add constraint test_poison check (topic <> 'poison.topic')`.execute(
      handle.db,
    );
    const good = makeRecords(6);
    const [poison] = makeRecords(1, { topic: 'poison.topic' });
    const results = await storeJobs(handle.db, [
      { jobId: 'first', items: good.slice(0, 3) },
      { jobId: 'poisoned', items: [good[3]!, poison!] },
      { jobId: 'last', items: good.slice(4) },
    ]);
    expect(results.map((r) => [r.stored, r.deadLetters.map((l) => l.itemIndex)])).toEqual([
      [3, []],
      [1, [1]],
      [2, []],
    ]);
    expect(await storedIds()).toEqual(good.map((r) => r.recordId));
  });

  it('behavior: jobs arriving while a group commits go into the next group together', async () => {
    const group = createGroupCommit(handle.db);
    const jobs = Array.from({ length: 10 }, () => makeRecords(20));
    const results = await Promise.all(jobs.map((items, i) => group.store(`job-${i}`, items)));
    expect(results.map((r) => r.stored)).toEqual(jobs.map(() => 20));
    expect(group.stats.jobs).toBe(10);
    // The first job goes alone (nobody to wait for), the nine that came meanwhile in one.
    expect(group.stats.groups).toBe(2);
    expect(await storedIds()).toEqual(jobs.flat().map((r) => r.recordId));
  });

  it('error: a failure that is not about the data fails every job of the group', async () => {
    const group = createGroupCommit(handle.db);
    await sql`alter table records rename to records_gone`.execute(handle.db);
    const outcomes = await Promise.allSettled([
      group.store('x', makeRecords(2)),
      group.store('y', makeRecords(2)),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
  });
});

describe.each(TEST_DATABASE_KINDS)('batch cutting on %s', (kind) => {
  let handle: DatabaseHandle;
  beforeEach(async () => {
    handle = await createTestDatabase(kind);
  });
  afterEach(() => handle.close());
  const options = {
    maxRecords: 100,
    maxAgeMs: 0,
    chainId: 31337,
    contract: `0x${'ab'.repeat(20)}`,
  };

  it('behavior: no batch is cut while the previous one waits to be signed; the next takes everything that waited', async () => {
    await storeJobs(handle.db, [{ jobId: 'a', items: makeRecords(3) }]);
    expect((await batchState(handle.db, options)).due).toBe(true);
    const first = await cutBatch(handle.db, options);
    expect(first?.recordCount).toBe(3);
    await storeJobs(handle.db, [{ jobId: 'b', items: makeRecords(4) }]);
    await storeJobs(handle.db, [{ jobId: 'c', items: makeRecords(5) }]);
    // The first batch is still `built`: the records wait for it.
    expect((await batchState(handle.db, options)).due).toBe(false);
    await handle.db
      .updateTable('batches')
      .set({ status: 'sent' })
      .where('batch_id', '=', first!.batchId)
      .execute();
    expect((await batchState(handle.db, options)).due).toBe(true);
    expect((await cutBatch(handle.db, options))?.recordCount).toBe(9);
  });
});
