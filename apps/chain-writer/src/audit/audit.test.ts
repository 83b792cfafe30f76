import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createAuditPublisher } from '@streamanchor/bus';
import { auditEntryHash, auditFieldsOf } from '@streamanchor/db';
import { TEST_DATABASE_KINDS } from '@streamanchor/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWriterFixture, type WriterFixture, waitFor } from '../test-fixtures';
import { AUDIT_TOPIC, auditAnchorRecordId } from './anchor';
import { verifyAudit } from './verify';

const cli = fileURLToPath(new URL('../cli/audit-verify.ts', import.meta.url));
const run = promisify(execFile);

/** Runs `pnpm run audit:verify`'s script (a separate process) against a Postgres database. */
async function auditVerifyCli(env: Record<string, string>): Promise<{ code: number; out: string }> {
  try {
    // node --import tsx, not npx: npm prints config warnings of its own under pnpm.
    const { stdout } = await run(process.execPath, ['--import', 'tsx', cli], {
      env: { ...process.env, ...env },
    });
    return { code: 0, out: stdout.trim() };
  } catch (error) {
    const failed = error as { code?: number; stderr?: string; stdout?: string };
    return { code: failed.code ?? -1, out: `${failed.stdout ?? ''}${failed.stderr ?? ''}`.trim() };
  }
}

describe.each(TEST_DATABASE_KINDS)('audit log in the writer on %s', (kind) => {
  let fx: WriterFixture;

  beforeEach(async () => {
    fx = await createWriterFixture(kind);
  });
  afterEach(async () => {
    await fx.close();
  });

  const entries = () => fx.database.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();

  it('default: consumes audit jobs, anchors the head through the batch path, and audit:verify checks it on chain', async () => {
    const app = fx.app({ env: { AUDIT_ANCHOR_INTERVAL_MS: '300', BATCH_MAX_AGE_MS: '200' } });
    await app.start();
    const publisher = createAuditPublisher(
      { connection: fx.redis, keys: fx.keys },
      { maxEvents: 3, flushMs: 50 },
    );
    const ids = [
      publisher.record({
        kind: 'session_opened',
        subject: 'alice',
        address: '203.0.113.7',
        relayId: 'relay-1',
        sessionId: 'AAAAAAAAAAAAAAAAAAAAAA',
      }),
      publisher.record({
        kind: 'token_refused',
        address: '203.0.113.8',
        details: { code: 'expired' },
      }),
      publisher.record({ kind: 'rate_limited', subject: 'bob', details: { limit: 'sessions' } }),
      publisher.record({
        kind: 'session_nacks',
        subject: 'alice',
        details: { counts: { invalid: 3 } },
      }),
      // Not storable: dead-lettered, the others are appended all the same.
      publisher.record({ kind: 'session_closed', subject: 'eve\u0000' }),
    ];
    await publisher.close();

    const appended = await waitFor('4 audit entries', async () => {
      const rows = await entries();
      return rows.length >= 4 ? rows : undefined;
    });
    expect(appended.map((r) => r.event_id)).toEqual(ids.slice(0, 4));
    expect(appended[0]).toMatchObject({
      kind: 'session_opened',
      subject: 'alice',
      address: '203.0.113.7',
    });
    await waitFor('the bad event dead-lettered', async () => app.metrics.deadLetters === 1);
    const letter = await fx.database.db
      .selectFrom('dead_letters')
      .selectAll()
      .executeTakeFirstOrThrow();
    expect(letter).toMatchObject({ queue: 'audit', record_id: ids[4] });

    // The head (seq 4) becomes a record of the reserved topic, batched and anchored.
    const anchor = await waitFor('the head anchored', async () => {
      const row = await fx.database.db
        .selectFrom('audit_anchors')
        .selectAll()
        .where(sql<boolean>`seq = 4`)
        .executeTakeFirst();
      return row;
    });
    expect(anchor.record_id).toBe(auditAnchorRecordId(4));
    expect(anchor.entry_hash).toBe(appended[3]!.entry_hash);
    const record = await fx.database.db
      .selectFrom('records')
      .selectAll()
      .where('record_id', '=', anchor.record_id)
      .executeTakeFirstOrThrow();
    expect(record).toMatchObject({ topic: AUDIT_TOPIC, content_hash: appended[3]!.entry_hash });
    const batchId = await waitFor('the head record in a batch', async () => {
      const row = await fx.database.db
        .selectFrom('record_leaves')
        .select('batch_id')
        .where('record_id', '=', anchor.record_id)
        .executeTakeFirst();
      return row?.batch_id ?? undefined;
    });
    await waitFor('anchored on chain', () => fx.isAnchored(batchId));

    const verifyDeps = { db: fx.database.db, publicClient: fx.publicClient, contract: fx.contract };
    const verified = await waitFor('the head verified on chain', async () => {
      const result = await verifyAudit(verifyDeps);
      return result.ok && result.lastAnchoredSeq === 4 && result.pending === 0 ? result : undefined;
    });
    expect(verified).toMatchObject({ ok: true, entries: 4, lastAnchoredSeq: 4, pending: 0 });
    // Head 3 may have been anchored too (an interval fell between the two jobs).
    const anchoredHeads = await fx.database.db.selectFrom('audit_anchors').select('seq').execute();
    expect(verified.ok && verified.anchored).toBe(anchoredHeads.length);
    // Not final yet (no indexer here): --require-final refuses it.
    expect(await verifyAudit({ ...verifyDeps, requireFinal: true })).toMatchObject({ ok: false });

    const cliEnv = {
      RPC_URL: fx.anvil.rpcUrl,
      CONTRACT_ADDRESS: fx.contract,
      DATABASE_URL: fx.database.location,
    };
    if (kind === 'postgres') {
      const ok = await auditVerifyCli(cliEnv);
      expect(ok.code).toBe(0);
      expect(ok.out).toMatch(
        /^audit log OK: 4 entries, head 4; [12] anchored heads verified on chain/,
      );
    }

    // Tampering with one row is named by its seq …
    await sql`update audit_log set address = '198.51.100.1' where seq = 2`.execute(fx.database.db);
    expect(await verifyAudit(verifyDeps)).toMatchObject({ ok: false, seq: 2 });
    if (kind === 'postgres') {
      const broken = await auditVerifyCli(cliEnv);
      expect(broken.code).toBe(1);
      expect(broken.out).toMatch(/^audit log BROKEN at seq 2: /);
    }

    // … and so is a rewrite that recomputes every hash after it: the anchored head disagrees.
    await app.stop();
    const rows = await entries();
    let prev = rows[0]!.entry_hash;
    for (const row of rows.slice(1)) {
      const forged = auditEntryHash({ ...auditFieldsOf(row), prevHash: prev });
      await sql`update audit_log set prev_hash = ${prev}, entry_hash = ${forged} where seq = ${Number(row.seq)}`.execute(
        fx.database.db,
      );
      prev = forged;
    }
    expect(await verifyAudit(verifyDeps)).toMatchObject({
      ok: false,
      seq: Number(anchoredHeads.map((a) => Number(a.seq)).sort()[0]),
      reason: 'audit_anchors.entry_hash differs from the entry',
    });
  });

  it('behavior: a retried audit job appends nothing twice, and an unmoved head is not anchored again', async () => {
    const app = fx.app({ env: { AUDIT_ANCHOR_INTERVAL_MS: '200', BATCH_MAX_AGE_MS: '3600000' } });
    await app.start();
    const queue = (await import('@streamanchor/bus')).createQueue(
      { connection: fx.redis, keys: fx.keys },
      'audit',
    );
    const events = [1, 2, 3].map((n) => ({
      eventId: `ev${n}`,
      at: 1000 + n,
      kind: 'rate_limited' as const,
    }));
    const events2 = (await import('bullmq')).QueueEvents;
    const queueEvents = new events2(queue.name, {
      connection: fx.redis.duplicate(),
      prefix: fx.keys.bull,
    });
    await queueEvents.waitUntilReady();
    try {
      const first = await queue.add('auditEvents', { events }, { jobId: 'a1' });
      expect(await first.waitUntilFinished(queueEvents, 30_000)).toEqual({ appended: 3 });
      const again = await queue.add(
        'auditEvents',
        { events: [...events.slice(1), { ...events[0]!, eventId: 'ev4' }] },
        { jobId: 'a2' },
      );
      expect(await again.waitUntilFinished(queueEvents, 30_000)).toEqual({ appended: 1 });
      // The head may be anchored at 3 first (an interval fell between the jobs), then at 4.
      await waitFor('head 4 queued for anchoring', async () => {
        const row = await fx.database.db
          .selectFrom('audit_anchors')
          .select(sql<string | number>`max(seq)`.as('seq'))
          .executeTakeFirst();
        return Number(row?.seq) === 4;
      });
      expect(app.metrics.auditAppended).toBe(4);
      const anchoredSoFar = app.metrics.auditAnchored;
      // Several more intervals pass: the head did not move, nothing more is anchored.
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect(app.metrics.auditAnchored).toBe(anchoredSoFar);
      const anchors = await fx.database.db
        .selectFrom('audit_anchors')
        .select('seq')
        .orderBy('seq')
        .execute();
      expect(anchors.map((a) => Number(a.seq)).at(-1)).toBe(4);
      expect(anchors.length).toBe(anchoredSoFar);
    } finally {
      await queueEvents.close();
      await queue.close();
    }
  });
});
