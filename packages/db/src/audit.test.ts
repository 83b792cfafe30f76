import type { AuditEvent } from '@streamanchor/protocol';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import {
  AUDIT_GENESIS_HASH,
  appendAudit,
  auditEntryHash,
  auditFieldsOf,
  readHead,
  verifyAuditChain,
} from './audit';
import type { DatabaseHandle } from './database';
import { createTestDatabase, TEST_DATABASE_KINDS } from './testing';

let counter = 0;
function event(overrides: Partial<AuditEvent> = {}): AuditEvent {
  counter += 1;
  return {
    eventId: `ev-${process.pid}-${counter}`,
    at: 1_700_000_000_000 + counter,
    kind: 'session_opened',
    subject: 'alice',
    relayId: 'relay-1',
    sessionId: 'AAAAAAAAAAAAAAAAAAAAAA',
    address: '127.0.0.1',
    details: { topics: ['demo'], n: counter },
    ...overrides,
  };
}

describe.each(TEST_DATABASE_KINDS)('audit log on %s', (kind) => {
  let handle: DatabaseHandle;

  beforeEach(async () => {
    handle = await createTestDatabase(kind);
  });
  afterEach(() => handle.close());

  const rows = () => handle.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();

  test('default: appends a hash chain that verifies; each entry commits to the previous one', async () => {
    expect(await verifyAuditChain(handle.db)).toEqual({ ok: true, entries: 0, head: undefined });
    const first = await appendAudit(handle.db, [event(), event({ kind: 'token_refused' })]);
    expect(first.appended).toBe(2);
    const second = await appendAudit(handle.db, [
      event({ kind: 'session_closed', subject: undefined, details: undefined }),
    ]);
    expect(second.head?.seq).toBe(3);

    const stored = await rows();
    expect(stored.map((r) => Number(r.seq))).toEqual([1, 2, 3]);
    expect(stored[0]!.prev_hash).toBe(AUDIT_GENESIS_HASH);
    expect(stored[1]!.prev_hash).toBe(stored[0]!.entry_hash);
    expect(stored[2]!.prev_hash).toBe(stored[1]!.entry_hash);
    expect(stored[2]!.subject).toBeNull();
    for (const row of stored) expect(auditEntryHash(auditFieldsOf(row))).toBe(row.entry_hash);
    expect(await readHead(handle.db)).toEqual({ seq: 3, entryHash: stored[2]!.entry_hash });
    expect(await verifyAuditChain(handle.db, { pageSize: 2 })).toEqual({
      ok: true,
      entries: 3,
      head: { seq: 3, entryHash: stored[2]!.entry_hash },
    });
  });

  test('behavior: an event appended again (a retried job) is skipped', async () => {
    const events = [event(), event()];
    expect((await appendAudit(handle.db, events)).appended).toBe(2);
    expect((await appendAudit(handle.db, [...events, event()])).appended).toBe(1);
    expect(await rows()).toHaveLength(3);
  });

  test('behavior: concurrent appends never fork the chain', async () => {
    await Promise.all(
      Array.from({ length: 12 }, () => appendAudit(handle.db, [event(), event(), event()])),
    );
    const stored = await rows();
    expect(stored).toHaveLength(36);
    expect(new Set(stored.map((r) => r.prev_hash)).size).toBe(36);
    const check = await verifyAuditChain(handle.db);
    expect(check).toMatchObject({ ok: true, entries: 36, head: { seq: 36 } });
  });

  test('error: tampering with one row is found at that seq', async () => {
    await appendAudit(
      handle.db,
      Array.from({ length: 6 }, () => event()),
    );
    await sql`update audit_log set subject = 'mallory' where seq = 4`.execute(handle.db);
    expect(await verifyAuditChain(handle.db, { pageSize: 2 })).toMatchObject({
      ok: false,
      seq: 4,
      entries: 3,
      reason: expect.stringMatching(/does not match its contents/),
    });
  });

  test('error: a deleted entry, or a rewritten one whose hash was recomputed, breaks the chain', async () => {
    await appendAudit(
      handle.db,
      Array.from({ length: 5 }, () => event()),
    );
    const third = (await rows())[2]!;
    const forged = auditEntryHash({ ...auditFieldsOf(third), subject: 'mallory' });
    await sql`update audit_log set subject = 'mallory', entry_hash = ${forged} where seq = 3`.execute(
      handle.db,
    );
    expect(await verifyAuditChain(handle.db)).toMatchObject({ ok: false, seq: 4 });
    await sql`delete from audit_log where seq = 5`.execute(handle.db);
    await sql`delete from audit_log where seq = 2`.execute(handle.db);
    expect(await verifyAuditChain(handle.db)).toMatchObject({
      ok: false,
      seq: 2,
      reason: 'entry 2 is missing',
    });
  });
});
