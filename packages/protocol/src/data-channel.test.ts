import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { LIMITS, PROTOCOL_VERSIONS } from './constants';
import {
  NACK_CODES,
  parseClientMessage,
  parseServerMessage,
  positionRangesOf,
  rangesInclude,
  scanMessageStructure,
  serializeReceiptsMessages,
} from './data-channel';
import type { ReceiptAnchor, ReceiptRecord } from './receipt';

describe('parseClientMessage', () => {
  test('default: a publish', () => {
    const result = parseClientMessage(
      '{"type":"publish","id":"1","topic":"demo","payload":{"x":1}}',
    );
    expect(result).toEqual({
      ok: true,
      message: { type: 'publish', id: '1', topic: 'demo', payload: { x: 1 } },
    });
  });

  test('behavior: null and scalars are valid payloads', () => {
    for (const payload of ['null', '0', '"s"', '[]']) {
      expect(
        parseClientMessage(`{"type":"publish","id":"1","topic":"demo","payload":${payload}}`).ok,
      ).toBe(true);
    }
  });

  test.each([
    ['not json', '{', 'malformed_message', null],
    ['an array', '[1]', 'malformed_message', null],
    ['a string', '"publish"', 'malformed_message', null],
    ['unknown type', '{"type":"subscribe","id":"7","topic":"demo"}', 'invalid_message', '7'],
    ['missing payload', '{"type":"publish","id":"7","topic":"demo"}', 'invalid_message', '7'],
    [
      'extra field',
      '{"type":"publish","id":"7","topic":"demo","payload":1,"x":1}',
      'invalid_message',
      '7',
    ],
    [
      'bad topic',
      '{"type":"publish","id":"7","topic":"Demo!","payload":1}',
      'invalid_message',
      '7',
    ],
    ['empty id', '{"type":"publish","id":"","topic":"demo","payload":1}', 'invalid_message', null],
    ['numeric id', '{"type":"publish","id":7,"topic":"demo","payload":1}', 'invalid_message', null],
  ])('error: %s', (_, text, code, id) => {
    const result = parseClientMessage(text);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.code).toBe(code);
      expect(result.id).toBe(id);
      expect(result.detail.length).toBeGreaterThan(0);
      expect(Object.keys(NACK_CODES)).toContain(result.code);
    }
  });
});

describe('parseServerMessage', () => {
  test('default: an ack', () => {
    const ack = {
      type: 'ack',
      id: '1',
      recordId: `0x${'1'.repeat(64)}`,
      contentHash: `0x${'2'.repeat(64)}`,
      acceptedAt: 1,
    };
    expect(parseServerMessage(JSON.stringify(ack))).toEqual(ack);
  });

  test('error: unknown nack code is rejected', () => {
    expect(
      parseServerMessage('{"type":"nack","id":null,"code":"nope","message":"x"}'),
    ).toBeUndefined();
  });
});

describe('scanMessageStructure', () => {
  const limits = { maxDepth: 4, maxMembers: 5, maxTotalMembers: 8 };
  const msg = (payload: string, id = '"p1"') =>
    `{"type":"publish","id":${id},"topic":"demo","payload":${payload}}`;
  const scan = (text: string) => scanMessageStructure(text, limits);

  test('default: a plain publish passes with nothing to report', () => {
    expect(scan(msg('{"a":[1,2,{"b":null}],"c":"x"}'))).toEqual({
      ok: true,
      id: 'p1',
      duplicateMember: undefined,
      unsafeInteger: undefined,
      names: 7,
    });
  });

  test('behavior: without findDuplicates it counts names (escaped ones too) and finds none', () => {
    const count = (text: string) => scanMessageStructure(text, limits, { findDuplicates: false });
    // 4 in the message, 2 + 1 in the payload; a duplicate is counted, not reported.
    expect(count(msg('{"a":1,"a":{"b":"c"}}'))).toEqual({
      ok: true,
      id: 'p1',
      duplicateMember: undefined,
      unsafeInteger: undefined,
      names: 7,
    });
    expect(count(msg('{"a":1,"\\u0061":2}'))).toMatchObject({ names: 6 });
    // The top-level id is found whatever its name's spelling; ids in the payload are not it.
    expect(count('{"payload":{"id":"inner"},"\\u0069d":"outer"}')).toMatchObject({
      id: 'outer',
    });
    expect(count('{"idx":"a","id":"b"}')).toMatchObject({ id: 'b' });
    expect(count(msg('[[[[[1]]]]]'))).toMatchObject({ ok: false, code: 'payload_too_deep' });
  });

  test('behavior: the top-level id is reported when the scan meets one, null otherwise', () => {
    expect(scan('{"payload":{"id":"inner"},"id":"outer"}')).toMatchObject({
      ok: true,
      id: 'outer',
    });
    expect(scan(msg('1', '7'))).toMatchObject({ ok: true, id: null });
    expect(scan(msg('1', '""'))).toMatchObject({ ok: true, id: null });
    expect(scan(msg('1', JSON.stringify('i'.repeat(200))))).toMatchObject({ ok: true, id: null });
  });

  test('behavior: depth counts payload containers; the message object is not counted', () => {
    expect(scan(msg('[[[[1]]]]')).ok).toBe(true);
    expect(scan(msg('[[[[[1]]]]]'))).toEqual({
      ok: false,
      code: 'payload_too_deep',
      id: 'p1',
      detail: expect.stringContaining('4'),
    });
    // Brackets inside strings (and escaped quotes) do not count.
    expect(scan(msg('"[[[[[[[[\\"[[[[{{{{"')).ok).toBe(true);
    expect(scan(msg('{"[[[[[[":{"\\"]]]]":1}}')).ok).toBe(true);
  });

  test('behavior: members per container and in total', () => {
    expect(scan(msg('[1,2,3,4,5]')).ok).toBe(true);
    expect(scan(msg('[1,2,3,4,5,6]'))).toMatchObject({ ok: false, code: 'payload_too_complex' });
    expect(scan(msg('{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}'))).toMatchObject({
      ok: false,
      code: 'payload_too_complex',
    });
    // 2 + 3 + 3 = 8 members in all is the limit; one more is refused.
    expect(scan(msg('[[1,2,3],[4,5,6]]')).ok).toBe(true);
    expect(scan(msg('[[1,2,3],[4,5],[]]')).ok).toBe(true);
    expect(scan(msg('[[1,2,3],[4,5,6,7]]'))).toMatchObject({
      ok: false,
      code: 'payload_too_complex',
      detail: expect.stringContaining('in all'),
    });
    expect(scan(msg('[]')).ok).toBe(true);
    expect(scan(msg('{ }')).ok).toBe(true);
  });

  test('behavior: duplicate member names, also when spelled with escapes', () => {
    expect(scan(msg('{"a":1,"b":{"a":2}}'))).toMatchObject({
      ok: true,
      duplicateMember: undefined,
    });
    expect(scan(msg('{"a":1,"a":2}'))).toMatchObject({ ok: true, duplicateMember: 'a' });
    expect(scan(msg('{"a":1,"\\u0061":2}'))).toMatchObject({ ok: true, duplicateMember: 'a' });
    expect(scan('{"type":"publish","type":"publish"}')).toMatchObject({
      ok: true,
      duplicateMember: 'type',
    });
    // A string value equal to a name is not a name.
    expect(scan(msg('{"a":"a","b":["a","b"]}'))).toMatchObject({ duplicateMember: undefined });
  });

  test('behavior: integers beyond 2^53 − 1 are found; fractions and exponents are not integers', () => {
    const unsafe = (payload: string) =>
      (scan(msg(payload)) as { unsafeInteger?: string }).unsafeInteger;
    expect(unsafe('9007199254740991')).toBeUndefined();
    expect(unsafe('-9007199254740991')).toBeUndefined();
    expect(unsafe('9007199254740992')).toBe('9007199254740992');
    expect(unsafe('[1,-9007199254740993]')).toBe('-9007199254740993');
    expect(unsafe('123456789012345678901234567890')).toBe('123456789012345678901234567890');
    expect(unsafe('9007199254740993.5')).toBeUndefined();
    expect(unsafe('1e300')).toBeUndefined();
    expect(unsafe('"9007199254740993"')).toBeUndefined();
  });

  test('behavior: the id is reported when it came before the problem', () => {
    expect(scan(msg('[[[[[[]]]]]]', '"abc"'))).toMatchObject({ id: 'abc' });
    expect(scan(msg('[[[[[[]]]]]]', '7'))).toMatchObject({ id: null });
    expect(scan('{"payload":[[[[[[]]]]]],"id":"late"}')).toMatchObject({ id: null });
  });

  test('behavior: escapes inside strings: escaped quotes and backslashes, names and ids', () => {
    // `\\` ends in a backslash, so the quote after it closes the string.
    expect(scan(msg('{"a\\\\":"b\\\\","c":"\\"[[[[[["}', '"x\\\\"'))).toMatchObject({
      ok: true,
      id: 'x\\',
      names: 6,
      duplicateMember: undefined,
    });
    expect(scan(msg('{"\\"":1,"\\u0022":2}'))).toMatchObject({ ok: true, duplicateMember: '"' });
    // A backslash as the text's last character: unterminated, left to JSON.parse.
    expect(scan('{"id":"a\\')).toMatchObject({ ok: true, id: null });
    expect(scan('{"id":"a\\"')).toMatchObject({ ok: true, id: null });
  });

  test('behavior: strings full of escapes are scanned in one pass (no search per escape)', () => {
    const escapes = `"${'\\n'.repeat(200_000)}"`;
    const text = msg(`{"a":${escapes},"b":[${escapes},${escapes}]}`);
    const started = performance.now();
    expect(scanMessageStructure(text, LIMITS)).toMatchObject({ ok: true, id: 'p1', names: 6 });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test('behavior: strings end where a scan one character at a time ends them (random texts)', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return Math.floor((seed / 2 ** 31) * n);
    };
    const pick = (chars: string, length: number) =>
      Array.from({ length }, () => chars[random(chars.length)]).join('');
    /** Where the string opened at `open` ends: the reference, one character at a time. */
    const end = (text: string, open: number) => {
      let j = open + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      return j;
    };
    const decoded = (raw: string) => {
      try {
        return JSON.parse(`"${raw}"`) as string;
      } catch {
        return raw;
      }
    };
    for (let n = 0; n < 3000; n++) {
      // Well-formed names and values full of escapes before the id, then a raw id value.
      const members = Array.from(
        { length: random(4) },
        () =>
          `${JSON.stringify(pick('a"\\\n{[', random(12)))}:${JSON.stringify(pick('b"\\/[', random(12)))}`,
      );
      // (Never empty: an empty id is skipped and a later string value taken, which this
      // reference does not model.)
      const raw = `a${pick('ab"\\nu0', random(16))}`;
      const text = `{${[...members, `"id":"${raw}`].join(',')}`;
      const open = text.lastIndexOf('"id":"') + 5;
      const close = end(text, open);
      const value = close < text.length ? decoded(text.slice(open + 1, close)) : undefined;
      const expected = value !== undefined && value.length > 0 ? value : null;
      const result = scanMessageStructure(text, LIMITS, { findDuplicates: n % 2 === 0 });
      expect(result).toMatchObject({ ok: true, id: expected, names: members.length + 1 });
    }
  });

  test('behavior: one pass over 30,000 levels stops at the limit; defaults are the LIMITS', () => {
    const deep = `${'['.repeat(30_000)}${']'.repeat(30_000)}`;
    expect(scanMessageStructure(msg(deep), LIMITS)).toMatchObject({
      ok: false,
      code: 'payload_too_deep',
    });
    const wide = `{${Array.from({ length: 3000 }, (_, i) => `"k${i}":0`).join(',')}}`;
    expect(scanMessageStructure(msg(wide), LIMITS)).toMatchObject({
      ok: false,
      code: 'payload_too_complex',
    });
    expect(LIMITS).toMatchObject({ maxDepth: 32, maxMembers: 1024, maxTotalMembers: 4096 });
  });

  test.each([
    ['unterminated string', '{"type":"pub'],
    ['stray closers', ']]]}}}'],
    ['garbage', '\u0000\\"\\'],
    ['empty', ''],
  ])('error: broken text (%s) never throws and is left to JSON.parse', (_, text) => {
    expect(scan(text).ok).toBe(true);
  });
});

describe('NACK_CODES and docs/protocol.md §5.4', () => {
  test('default: the table lists every code, in order, and nothing else', () => {
    const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('### 5.4 `nack`'), doc.indexOf('### 5.5'));
    const rows = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map(([, code]) => code);
    expect(rows).toEqual(Object.keys(NACK_CODES));
  });

  test('behavior: a rate_limited nack carries its retry hint', () => {
    const nack = { type: 'nack', id: 'p1', code: 'rate_limited', message: 'x', retryAfterMs: 120 };
    expect(parseServerMessage(JSON.stringify(nack))).toEqual(nack);
  });
});

/** An anchor with every member set (docs/protocol.md §5.6). */
const sampleAnchor: ReceiptAnchor = {
  status: 'final',
  confirmations: 12,
  revision: 2,
  batchId: `0x${'aa'.repeat(32)}`,
  merkleRoot: `0x${'bb'.repeat(32)}`,
  recordCount: 3,
  chainId: 1,
  contract: `0x${'cc'.repeat(20)}`,
  txHash: `0x${'dd'.repeat(32)}`,
  blockNumber: 100,
  blockHash: `0x${'ee'.repeat(32)}`,
  logIndex: 2,
};

describe('serializeReceiptsMessages', () => {
  const anchor = sampleAnchor;
  const recordOf = (i: number, subject = 'alice'): ReceiptRecord => ({
    recordId: `0x${i.toString(16).padStart(64, '0')}`,
    topic: 'demo',
    subject,
    contentHash: `0x${'66'.repeat(32)}`,
    acceptedAt: 1_764_000_000_000 + i,
    leafHash: `0x${'77'.repeat(32)}`,
    leafIndex: i,
    proof: Array.from({ length: 7 }, () => `0x${'88'.repeat(32)}` as const),
  });

  test('default: one message holding the anchor and every record, which parses as `receipts`', () => {
    const records = [0, 1, 2].map((i) => recordOf(i));
    const messages = serializeReceiptsMessages(anchor, records);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.records).toBe(3);
    expect(parseServerMessage(messages[0]!.text)).toEqual({ type: 'receipts', anchor, records });
  });

  test('behavior: records are split over messages of at most maxBytes UTF-8 bytes, in order', () => {
    // Multi-byte subjects, so that UTF-16 length and UTF-8 bytes differ.
    const records = Array.from({ length: 300 }, (_, i) =>
      recordOf(i, `ålice-${'€'.repeat(i % 40)}😀`),
    );
    const maxBytes = 8 * 1024;
    const messages = serializeReceiptsMessages(anchor, records, maxBytes);
    expect(messages.length).toBeGreaterThan(1);
    const got: ReceiptRecord[] = [];
    for (const { text, records: count } of messages) {
      expect(new TextEncoder().encode(text).length).toBeLessThanOrEqual(maxBytes);
      const parsed = parseServerMessage(text);
      expect(parsed?.type).toBe('receipts');
      if (parsed?.type !== 'receipts') continue;
      expect(parsed.anchor).toEqual(anchor);
      expect(parsed.records).toHaveLength(count);
      got.push(...parsed.records);
    }
    expect(got).toEqual(records);
    // Full messages: adding the next message's first record would have passed the limit.
    for (let i = 0; i + 1 < messages.length; i++) {
      const next = JSON.stringify(
        records[messages.slice(0, i + 1).reduce((n, m) => n + m.records, 0)],
      );
      expect(new TextEncoder().encode(`${messages[i]!.text},${next}`).length).toBeGreaterThan(
        maxBytes,
      );
    }
  });

  test('behavior: a record larger than maxBytes on its own still gets a message of its own', () => {
    const messages = serializeReceiptsMessages(anchor, [recordOf(0), recordOf(1)], 100);
    expect(messages.map((m) => m.records)).toEqual([1, 1]);
  });

  test('behavior: no records, no messages', () => {
    expect(serializeReceiptsMessages(anchor, [])).toEqual([]);
  });
});

describe('parseServerMessage: protocol v2 messages', () => {
  test('default: an `anchoring` message', () => {
    const message = { type: 'anchoring', anchor: { ...sampleAnchor }, records: 3 };
    expect(parseServerMessage(JSON.stringify(message))).toEqual(message);
  });

  test('error: `receipts` with no records, `anchoring` with 0 records, or an unknown anchor member are not messages', () => {
    for (const message of [
      { type: 'receipts', anchor: sampleAnchor, records: [] },
      { type: 'anchoring', anchor: sampleAnchor, records: 0 },
      { type: 'anchoring', anchor: { ...sampleAnchor, proof: [] }, records: 1 },
    ])
      expect(parseServerMessage(JSON.stringify(message))).toBeUndefined();
  });

  test('behavior: hello names either protocol version, and no other', () => {
    const hello = {
      type: 'hello',
      sessionId: 'AAAAAAAAAAAAAAAAAAAAAA',
      subject: 'alice',
      topics: ['demo'],
      maxPayloadBytes: 16384,
      maxMessageBytes: 65536,
    };
    for (const protocol of PROTOCOL_VERSIONS)
      expect(parseServerMessage(JSON.stringify({ ...hello, protocol }))).toMatchObject({
        protocol,
      });
    expect(
      parseServerMessage(JSON.stringify({ ...hello, protocol: 'streamanchor.v3' })),
    ).toBeUndefined();
  });
});

describe('position ranges', () => {
  test('default: positions become ascending inclusive ranges', () => {
    expect(positionRangesOf([7, 1, 2, 3, 9, 8, 3, 12])).toEqual([
      [1, 3],
      [7, 9],
      [12, 12],
    ]);
    expect(positionRangesOf([])).toEqual([]);
  });

  test('behavior: rangesInclude finds a position in them', () => {
    const ranges = positionRangesOf([1, 2, 3, 7, 8, 9, 12]);
    expect([0, 1, 3, 4, 6, 7, 9, 10, 12, 13].map((p) => rangesInclude(ranges, p))).toEqual([
      false,
      true,
      true,
      false,
      false,
      true,
      true,
      false,
      true,
      false,
    ]);
  });
});
