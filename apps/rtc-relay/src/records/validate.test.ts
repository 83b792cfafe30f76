import { canonicalPayload, contentHashOf, createContentHasher } from '@streamanchor/protocol';
import { describe, expect, test } from 'vitest';
import { newRecordId, type RecordContext, validateMessage } from './validate';

const ctx: RecordContext = {
  relayId: 'relay-1',
  sessionId: 'AAAAAAAAAAAAAAAAAAAAAA',
  subject: 'alice',
  topics: ['demo'],
  tokenExpiresAt: 2_000_000_000_000,
  maxMessageBytes: 256,
  maxPayloadBytes: 64,
};
const now = () => 1_700_000_000_000;
const publish = (payload: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ type: 'publish', id: 'p1', topic: 'demo', payload, ...extra });

describe('validateMessage', () => {
  test('default: a valid publish becomes an AcceptedRecord', () => {
    const payload = { b: 2, a: [1, 'é'] };
    const result = validateMessage(publish(payload), ctx, now);
    const canonical = canonicalPayload(payload);
    expect(result).toEqual({
      ok: true,
      id: 'p1',
      record: {
        recordId: expect.stringMatching(/^0x[0-9a-f]{64}$/),
        topic: 'demo',
        subject: 'alice',
        contentHash: contentHashOf(canonical),
        acceptedAt: now(),
        payload: canonical,
        relayId: 'relay-1',
        sessionId: ctx.sessionId,
      },
    });
  });

  test('behavior: the fast hasher gives the protocol content hash', async () => {
    const hash = await createContentHasher();
    for (const text of ['', '{}', '"ü"', JSON.stringify({ emoji: '😀'.repeat(500), n: 1e21 })]) {
      expect(hash(text)).toBe(contentHashOf(text));
    }
    const result = validateMessage(publish({ x: 'ü' }), { ...ctx, hash }, now);
    expect(result.ok && result.record.contentHash).toBe(contentHashOf('{"x":"ü"}'));
  });

  test('behavior: record ids are unique 32-byte hex', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => newRecordId()));
    expect(ids.size).toBe(2000);
    for (const id of ids) expect(id).toMatch(/^0x[0-9a-f]{64}$/);
  });

  test('behavior: the checks run in the protocol order', () => {
    const code = (text: string, over: Partial<RecordContext> = {}) => {
      const result = validateMessage(text, { ...ctx, ...over }, now);
      return result.ok ? 'ok' : [result.code, result.id];
    };
    // Size first: even broken JSON is too large before it is malformed.
    expect(code(`{${'x'.repeat(300)}`)).toEqual(['message_too_large', null]);
    // Multi-byte characters count in bytes.
    expect(code(publish('é'.repeat(110)))).toEqual(['message_too_large', null]);
    expect(code('{"type":')).toEqual(['malformed_message', null]);
    expect(code('null')).toEqual(['malformed_message', null]);
    expect(code(JSON.stringify({ type: 'nope', id: 'n1' }))).toEqual(['invalid_message', 'n1']);
    expect(code(publish(1, { topic: 'other' }))).toEqual(['topic_not_allowed', 'p1']);
    expect(code(publish(1, { topic: 'other' }), { topics: ['*'] })).toBe('ok');
    // Topic before expiry, expiry before the payload.
    expect(code(publish(1, { topic: 'other' }), { tokenExpiresAt: now() })).toEqual([
      'topic_not_allowed',
      'p1',
    ]);
    expect(
      code('{"type":"publish","id":"p1","topic":"demo","payload":"\\udc00"}', {
        tokenExpiresAt: now(),
      }),
    ).toEqual(['token_expired', 'p1']);
    expect(code('{"type":"publish","id":"p1","topic":"demo","payload":"\\udc00"}')).toEqual([
      'invalid_payload',
      'p1',
    ]);
    // The canonical form is what is measured: spaces in the message do not count.
    expect(
      code(
        `{"type":"publish","id":"p1","topic":"demo","payload":{  "a" :  "${'x'.repeat(56)}"  }}`,
      ),
    ).toBe('ok');
    expect(code(publish({ a: 'x'.repeat(57) }))).toEqual(['payload_too_large', 'p1']);
  });
});
