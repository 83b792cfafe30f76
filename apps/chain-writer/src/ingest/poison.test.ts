import { TEST_DATABASE_KINDS } from '@streamanchor/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWriterFixture, makeRecords, type WriterFixture, waitFor } from '../test-fixtures';
import { checkRecord } from './validate';

describe('checkRecord', () => {
  const [good] = makeRecords(1);
  it('default: accepts a record the schema and storage accept', () => {
    expect(checkRecord(good)).toEqual({ ok: true, record: good });
  });
  it('error: names U+0000 and lone surrogates in any field, and schema problems', () => {
    // The Subject schema may refuse it first (it bounds characters too); either way it is named.
    expect(checkRecord({ ...good, subject: 'a\u0000b' })).toMatchObject({
      ok: false,
      recordId: good!.recordId,
      reason: expect.stringMatching(/^(schema|unstorable text): \/subject/),
    });
    expect(checkRecord({ ...good, payload: '"\uD800"' })).toMatchObject({
      ok: false,
      reason: 'unstorable text: /payload: contains a lone surrogate',
    });
    expect(checkRecord({ ...good, relayId: 'r\uDC00' })).toMatchObject({ ok: false });
    expect(checkRecord({ ...good, recordId: 'nope' })).toMatchObject({
      ok: false,
      recordId: 'nope',
      reason: expect.stringMatching(/^schema: \/recordId/),
    });
    expect(checkRecord(null)).toMatchObject({ ok: false, recordId: null });
  });
});

describe.each(TEST_DATABASE_KINDS)('poison isolation on %s', (kind) => {
  let fx: WriterFixture;

  beforeEach(async () => {
    fx = await createWriterFixture(kind);
  });
  afterEach(async () => {
    await fx.close();
  });

  const deadLetters = () =>
    fx.database.db.selectFrom('dead_letters').selectAll().orderBy('item_index').execute();

  it('default: a NUL subject and a lone surrogate in one job never hold another tenant’s 50 records hostage', async () => {
    const app = fx.app({ env: { BATCH_MAX_RECORDS: '1000', BATCH_MAX_AGE_MS: '300' } });
    await app.start();
    const tenantA = makeRecords(50, { subject: 'tenant-a' });
    const [nul] = makeRecords(1, { subject: 'mallory\u0000admin' });
    const [surrogate] = makeRecords(1, { subject: 'eve' });
    surrogate!.payload = '{"x":"\uD83D"}';
    const records = [
      ...tenantA.slice(0, 20),
      nul!,
      ...tenantA.slice(20, 35),
      surrogate!,
      ...tenantA.slice(35),
    ];
    const job = await fx.send(records);
    expect(await job.waitUntilFinished(fx.queueEvents, 30_000)).toEqual({
      stored: 50,
      deadLettered: 2,
    });
    expect(app.metrics.deadLetters).toBe(2);

    const letters = await deadLetters();
    expect(letters.map((l) => [l.queue, l.job_id, l.item_index, l.record_id, l.reason])).toEqual([
      [
        'records',
        job.id,
        20,
        nul!.recordId,
        expect.stringMatching(/^(schema|unstorable text): \/subject/),
      ],
      [
        'records',
        job.id,
        36,
        surrogate!.recordId,
        'unstorable text: /payload: contains a lone surrogate',
      ],
    ]);
    // The raw item is kept whole, as JSON text (NUL and surrogate escaped).
    expect(JSON.parse(letters[0]!.raw)).toEqual(nul);
    expect(JSON.parse(letters[1]!.raw)).toEqual(surrogate);

    // All 50 are stored in their order, batched and anchored.
    const [batch] = await waitFor('a batch', async () => {
      const rows = await fx.database.db.selectFrom('batches').selectAll().execute();
      return rows.length > 0 ? rows : undefined;
    });
    expect(batch!.record_count).toBe(50);
    await waitFor('anchored', () => fx.isAnchored(batch!.batch_id));
    expect((await fx.recordsOf(batch!.batch_id)).map((r) => r.record_id)).toEqual(
      tenantA.map((r) => r.recordId),
    );

    // The same job delivered again stores nothing twice and dead-letters nothing twice.
    await job.remove();
    const again = await fx.send(records);
    expect(await again.waitUntilFinished(fx.queueEvents, 30_000)).toEqual({ stored: 0 });
    expect(await deadLetters()).toHaveLength(2);
    expect(app.metrics.deadLetters).toBe(2);
  });

  it('behavior: an insert failing for an unforeseen reason is bisected; only the failing record is dead-lettered', async () => {
    // A constraint the writer's checks know nothing about plays the unforeseen failure.
    await sql`alter table records add constraint test_poison check (topic <> 'poison.topic')`.execute(
      fx.database.db,
    );
    const app = fx.app({ env: { BATCH_MAX_AGE_MS: '3600000' } });
    await app.start();
    const good = makeRecords(40, { subject: 'tenant-a' });
    const [poison] = makeRecords(1, { topic: 'poison.topic', subject: 'tenant-b' });
    const records = [...good.slice(0, 27), poison!, ...good.slice(27)];
    const job = await fx.send(records);
    expect(await job.waitUntilFinished(fx.queueEvents, 30_000)).toEqual({
      stored: 40,
      deadLettered: 1,
    });
    expect(await job.getState()).toBe('completed');
    expect(job.attemptsMade).toBeLessThanOrEqual(1);
    const letters = await deadLetters();
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ item_index: 27, record_id: poison!.recordId });
    expect(letters[0]!.reason).toMatch(/^insert failed: 23514 /);
    const rows = await fx.database.db
      .selectFrom('records')
      .select('record_id')
      .orderBy('seq')
      .execute();
    expect(rows.map((r) => r.record_id)).toEqual(good.map((r) => r.recordId));
    expect(app.metrics.deadLetters).toBe(1);
  });

  it('error: a job that is no list of records fails at once and keeps its data as a dead letter', async () => {
    const app = fx.app({ env: { BATCH_MAX_AGE_MS: '3600000' } });
    await app.start();
    const bad = await fx.queue.add('recordBatch', { records: 'nope' } as never, {
      jobId: 'not-a-list',
      attempts: 5,
    });
    await expect(bad.waitUntilFinished(fx.queueEvents, 30_000)).rejects.toThrow(
      /malformed records job not-a-list/,
    );
    expect(await deadLetters()).toMatchObject([
      { job_id: 'not-a-list', item_index: -1, record_id: null, raw: '{"records":"nope"}' },
    ]);
    expect(app.metrics.deadLetters).toBe(1);
  });
});
