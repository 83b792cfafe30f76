import type { Receipt } from '@streamanchor/protocol';
import { describe, expect, it } from 'vitest';
import { StreamAnchorError } from './errors';
import { ReceiptBook } from './receipt-book';

const hex32 = (digit: string) => `0x${digit.repeat(64)}` as const;

function receipt(recordId: string, status: Receipt['status'], revision: number): Receipt {
  return {
    status,
    confirmations: status === 'reorged' ? 0 : 1,
    revision,
    recordId: recordId as `0x${string}`,
    topic: 'demo',
    subject: 'alice',
    contentHash: hex32('c'),
    acceptedAt: 1,
    leafHash: hex32('d'),
    leafIndex: 0,
    proof: [],
    batchId: hex32('e'),
    merkleRoot: hex32('f'),
    recordCount: 1,
    chainId: 31337,
    contract: `0x${'12'.repeat(20)}`,
    txHash: hex32('1'),
    blockNumber: 5,
    blockHash: hex32('2'),
    logIndex: 0,
  };
}

describe('ReceiptBook', () => {
  it('default: keeps the highest revision of each tracked record', () => {
    const book = new ReceiptBook(10);
    const a = hex32('a');
    expect(book.offer(receipt(a, 'included', 1))).toBe('unknown');
    book.track(a);
    expect(book.offer(receipt(a, 'included', 1))).toBe('current');
    expect(book.offer(receipt(a, 'included', 1))).toBe('duplicate');
    expect(book.offer(receipt(a, 'final', 3))).toBe('current');
    expect(book.offer(receipt(a, 'reorged', 2))).toBe('stale');
    expect(book.current(a)).toMatchObject({ status: 'final', revision: 3 });
  });

  it('behavior: a newer revision after final (a reorg deeper than the finality depth) is current again', async () => {
    const book = new ReceiptBook(10);
    const a = hex32('a');
    book.track(a);
    book.offer(receipt(a, 'final', 2));
    expect(book.offer(receipt(a, 'reorged', 3))).toBe('current');
    expect(book.current(a)).toMatchObject({ status: 'reorged', revision: 3 });
    const waiting = book.whenFinal(a);
    book.offer(receipt(a, 'included', 4));
    book.offer(receipt(a, 'final', 5));
    await expect(waiting).resolves.toMatchObject({ status: 'final', revision: 5 });
  });

  it('error: maxRecords must be a positive integer', () => {
    expect(() => new ReceiptBook(0)).toThrow(StreamAnchorError);
    expect(() => new ReceiptBook(1.5)).toThrow(StreamAnchorError);
  });
});
