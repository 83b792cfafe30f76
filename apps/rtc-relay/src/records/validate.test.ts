import { canonicalPayload, contentHashOf, createContentHasher } from '@streamanchor/protocol';
import { describe, expect, test } from 'vitest';
import {
  checkScreened,
  newRecordId,
  type RecordContext,
  screenMessage,
  validateMessage,
} from './validate';

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
    expect(result.ok && result.record?.contentHash).toBe(contentHashOf('{"x":"ü"}'));
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

  test('behavior: screenMessage does only the checks before parsing, and carries the id to checkScreened', () => {
    // A message the screen passes though it will fail later: the quota is taken in between.
    const broken = '{"type":"publish","id":"p9","topic":"demo","payload":"\\udc00"}';
    const screened = screenMessage(broken, ctx);
    expect(screened).toMatchObject({ ok: true, id: 'p9' });
    if (!screened.ok) throw new Error('unreachable');
    expect(checkScreened(broken, screened, ctx, now)).toMatchObject({
      ok: false,
      code: 'invalid_payload',
      id: 'p9',
    });
    expect(screenMessage(`{${'x'.repeat(300)}`, ctx)).toMatchObject({
      ok: false,
      code: 'message_too_large',
    });
    expect(screenMessage('{"type":', ctx)).toMatchObject({ ok: true, id: null });
    const good = publish({ a: 1 });
    const passed = screenMessage(good, ctx);
    if (!passed.ok) throw new Error('unreachable');
    const whole = validateMessage(good, ctx, now);
    if (!whole.ok) throw new Error('unreachable');
    // The same verdict and record (the record id is fresh each time).
    expect(checkScreened(good, passed, ctx, now)).toEqual({
      ...whole,
      record: { ...whole.record, recordId: expect.stringMatching(/^0x[0-9a-f]{64}$/) },
    });
  });

  test('behavior: nesting and member counts are refused before the message is parsed', () => {
    const big = { ...ctx, maxMessageBytes: 65_536, maxPayloadBytes: 65_536 };
    const code = (text: string, over: Partial<RecordContext> = {}) => {
      const result = validateMessage(text, { ...big, ...over }, now);
      return result.ok ? 'ok' : [result.code, result.id];
    };
    const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const raw = (payload: string, topic = 'demo') =>
      `{"type":"publish","id":"p1","topic":"${topic}","payload":${payload}}`;
    expect(code(raw(nested(32)))).toBe('ok');
    expect(code(raw(nested(33)))).toEqual(['payload_too_deep', 'p1']);
    // 30,000 levels in 60 KB, the attack that stalled the relay.
    expect(code(raw(nested(30_000)))).toEqual(['payload_too_deep', 'p1']);
    expect(code(raw(nested(3)), { maxDepth: 2 })).toEqual(['payload_too_deep', 'p1']);
    // Before JSON.parse: even broken JSON that is too deep gets payload_too_deep.
    expect(code(`{"id":"p1","payload":${'['.repeat(40)}`)).toEqual(['payload_too_deep', 'p1']);
    // Before the topic check.
    expect(code(raw(nested(40), 'other'))).toEqual(['payload_too_deep', 'p1']);
    const keys = (n: number) => `{${Array.from({ length: n }, (_, i) => `"k${i}":0`).join(',')}}`;
    expect(code(raw(keys(1024)))).toBe('ok');
    expect(code(raw(keys(1025)))).toEqual(['payload_too_complex', 'p1']);
    expect(code(raw(keys(3000)))).toEqual(['payload_too_complex', 'p1']);
    const rows = (n: number, width: number) =>
      `[${Array.from({ length: n }, () => `[${Array(width).fill(0).join(',')}]`).join(',')}]`;
    expect(code(raw(rows(8, 500)))).toBe('ok'); // 8 + 4000 members
    expect(code(raw(rows(9, 500)))).toEqual(['payload_too_complex', 'p1']);
    expect(code(raw(rows(2, 3)), { maxTotalMembers: 7 })).toEqual(['payload_too_complex', 'p1']);
  });

  test('behavior: duplicate member names are refused with duplicate_member', () => {
    const code = (text: string) => {
      const result = validateMessage(text, ctx, now);
      return result.ok ? 'ok' : [result.code, result.id];
    };
    expect(code(publish({ a: { a: 1 } }))).toBe('ok');
    expect(code('{"type":"publish","id":"p1","topic":"demo","payload":{"a":1,"a":2}}')).toEqual([
      'duplicate_member',
      'p1',
    ]);
    expect(
      code('{"type":"publish","id":"p1","topic":"demo","payload":[{"b":1,"\\u0062":2}]}'),
    ).toEqual(['duplicate_member', 'p1']);
    // In the message itself: JSON.parse would keep the last "topic".
    expect(
      code('{"type":"publish","id":"p1","topic":"secret","topic":"demo","payload":1}'),
    ).toEqual(['duplicate_member', 'p1']);
    // Topic and expiry are checked first.
    expect(code('{"type":"publish","id":"p1","topic":"other","payload":{"a":1,"a":2}}')).toEqual([
      'topic_not_allowed',
      'p1',
    ]);
    // And it comes before an unsafe integer and before a payload with no canonical form.
    const withPayload = (payload: string) =>
      validateMessage(`{"type":"publish","id":"p1","topic":"demo","payload":${payload}}`, ctx, now);
    for (const payload of [
      '{"a":9007199254740993,"a":1}',
      '{"a":"\\udc00","a":1}',
      '[{"a":1e400},{"b":1,"b":2}]',
    ]) {
      expect(withPayload(payload)).toMatchObject({
        ok: false,
        code: 'duplicate_member',
        detail: expect.stringMatching(/member "[ab]" occurs twice/),
      });
    }
  });

  test('behavior: integers beyond 2^53 − 1 are refused with invalid_payload; doubles are kept', () => {
    const result = (payload: string) =>
      validateMessage(`{"type":"publish","id":"p1","topic":"demo","payload":${payload}}`, ctx, now);
    expect(result('9007199254740991')).toMatchObject({
      ok: true,
      record: { payload: '9007199254740991' },
    });
    expect(result('[-9007199254740991]').ok).toBe(true);
    for (const big of ['9007199254740992', '9007199254740993', '{"n":-18446744073709551616}']) {
      expect(result(big)).toMatchObject({ ok: false, code: 'invalid_payload', id: 'p1' });
    }
    expect(result('1e300')).toMatchObject({ ok: true, record: { payload: '1e+300' } });
    // Beyond the doubles: JSON.parse makes it Infinity, which has no canonical form.
    expect(result('[1e400]')).toMatchObject({ ok: false, code: 'invalid_payload', id: 'p1' });
    expect(result('9007199254740993.0')).toMatchObject({
      ok: true,
      record: { payload: '9007199254740992' },
    });
  });

  test('behavior: a NUL in a payload string is accepted and stored escaped, never raw', () => {
    const result = validateMessage(publish({ s: 'a\u0000b', 'k\u0000': 1 }), ctx, now);
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.record?.payload).toBe('{"k\\u0000":1,"s":"a\\u0000b"}');
      expect(result.record?.payload.includes('\u0000')).toBe(false);
    }
  });

  test('error: never throws on hostile text', () => {
    const texts = [
      '',
      '\u0000',
      '{"id":"p1","payload":"\\',
      `{"type":"publish","id":"p1","topic":"demo","payload":${'{"a":'.repeat(20)}1${'}'.repeat(20)}}`,
      ']]]]{{{{',
      '{"type":"publish","id":"p1","topic":"demo","payload":1}'.repeat(3),
    ];
    for (const text of texts) {
      expect(() => validateMessage(text, ctx, now)).not.toThrow();
      expect(validateMessage(text, ctx, now).ok).toBe(false);
    }
  });
});

describe('validateMessage: subscribe and unsubscribe', () => {
  test('default: a valid subscribe or unsubscribe is handed to the session as is', () => {
    const subscribe = {
      type: 'subscribe',
      id: 's1',
      topics: [{ topic: 'demo', after: 41 }, { topic: 'other' }],
    };
    expect(validateMessage(JSON.stringify(subscribe), ctx, now)).toEqual({
      ok: true,
      id: 's1',
      control: subscribe,
    });
    const unsubscribe = { type: 'unsubscribe', id: 's2', topics: ['demo'] };
    expect(validateMessage(JSON.stringify(unsubscribe), ctx, now)).toEqual({
      ok: true,
      id: 's2',
      control: unsubscribe,
    });
  });

  test('error: schema problems are invalid_message, with the id', () => {
    const cases = [
      { type: 'subscribe', id: 's1', topics: [] },
      { type: 'subscribe', id: 's1', topics: [{ topic: 'Demo' }] },
      { type: 'subscribe', id: 's1', topics: [{ topic: 'demo', after: -1 }] },
      { type: 'subscribe', id: 's1', topics: [{ topic: 'demo', after: 1.5 }] },
      { type: 'subscribe', id: 's1', topics: [{ topic: 'demo', from: 1 }] },
      {
        type: 'subscribe',
        id: 's1',
        topics: Array.from({ length: 65 }, (_, i) => ({ topic: `t${i}` })),
      },
      { type: 'unsubscribe', id: 's1', topics: 'demo' },
    ];
    for (const message of cases) {
      expect(
        validateMessage(JSON.stringify(message), { ...ctx, maxMessageBytes: 4096 }, now),
      ).toMatchObject({
        ok: false,
        id: 's1',
        code: 'invalid_message',
      });
    }
  });

  test('error: a duplicate member name is duplicate_member', () => {
    const text = '{"type":"subscribe","id":"s1","topics":[{"topic":"demo","topic":"other"}]}';
    expect(validateMessage(text, ctx, now)).toEqual({
      ok: false,
      id: 's1',
      code: 'duplicate_member',
      detail: 'member "topic" occurs twice',
    });
  });

  test('error: after the token expired, token_expired', () => {
    const text = JSON.stringify({ type: 'unsubscribe', id: 's1', topics: ['demo'] });
    expect(validateMessage(text, { ...ctx, tokenExpiresAt: now() }, now)).toMatchObject({
      ok: false,
      id: 's1',
      code: 'token_expired',
    });
  });
});
