import { describe, expect, test } from 'vitest';
import { NACK_CODES, parseClientMessage, parseServerMessage } from './data-channel';

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
