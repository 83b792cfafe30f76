import { describe, expect, it } from 'vitest';
import { CommandError } from './args';
import { receiptsIn } from './commands/verify';
import { parsePayload } from './payload';

describe('receiptsIn (the receipt files verify reads)', () => {
  const receipt = { recordId: '0x01', status: 'included' };

  it('default: one JSON value: a receipt, a {receipt} line, or an array of these', () => {
    expect(receiptsIn(JSON.stringify(receipt), 'r.json')).toEqual([
      { source: 'r.json', value: receipt },
    ]);
    expect(receiptsIn(JSON.stringify({ type: 'receipt', id: '1', receipt }), 'r.json')).toEqual([
      { source: 'r.json', value: receipt },
    ]);
    expect(receiptsIn(JSON.stringify([receipt, { receipt }]), 'r.json')).toEqual([
      { source: 'r.json[0]', value: receipt },
      { source: 'r.json[1]', value: receipt },
    ]);
  });

  it('behavior: JSON lines (publish --receipts output): acks and nacks skipped, blank lines ignored', () => {
    const text = [
      JSON.stringify({ type: 'ack', id: '1', recordId: '0x01' }),
      '',
      JSON.stringify({ type: 'nack', id: '2', code: 'rate_limited' }),
      JSON.stringify({ type: 'receipt', id: '1', receipt }),
      JSON.stringify(receipt),
      '',
    ].join('\n');
    expect(receiptsIn(text, 'out.jsonl')).toEqual([
      { source: 'out.jsonl:4', value: receipt },
      { source: 'out.jsonl:5', value: receipt },
    ]);
    expect(receiptsIn('', 'empty.json')).toEqual([]);
  });

  it('error: a line that is not JSON names the file and line', () => {
    expect(() => receiptsIn(`${JSON.stringify(receipt)}\n{oops\n`, 'bad.jsonl')).toThrow(
      CommandError,
    );
    expect(() => receiptsIn(`${JSON.stringify(receipt)}\n{oops\n`, 'bad.jsonl')).toThrow(
      /^bad\.jsonl: line 2 is not JSON/,
    );
  });
});

describe('parsePayload (publish arguments and stdin lines)', () => {
  it('default: JSON text is its value; anything else is the text as a string', () => {
    expect(parsePayload('{"a":[1,2]}')).toEqual({ a: [1, 2] });
    expect(parsePayload('42')).toBe(42);
    expect(parsePayload('"quoted"')).toBe('quoted');
    expect(parsePayload('null')).toBeNull();
    expect(parsePayload('hello world')).toBe('hello world');
    expect(parsePayload('{not json')).toBe('{not json');
  });
});
