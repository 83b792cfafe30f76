import { type Receipt, type ReceiptAnchor, splitReceipt } from '@streamanchor/protocol';
import { describe, expect, it } from 'vitest';
import { StreamAnchorError } from './errors';
import { ReceiptBook } from './receipt-book';

const hex32 = (digit: string) => `0x${digit.repeat(64)}` as const;

function receipt(
  recordId: string,
  status: Receipt['status'],
  revision: number,
  batch: Partial<Pick<Receipt, 'batchId' | 'leafIndex'>> = {},
): Receipt {
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
    ...batch,
  };
}

/** The anchor of `batchId` at `revision` (another block than receipt()'s). */
function anchor(batchId: string, status: Receipt['status'], revision: number): ReceiptAnchor {
  return {
    ...splitReceipt(receipt(hex32('0'), status, revision, { batchId: batchId as `0x${string}` }))
      .anchor,
    txHash: hex32('3'),
    blockNumber: 7,
    blockHash: hex32('4'),
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

  it('behavior: applyAnchor gives every held record of the batch the new anchor, keeping its own half', () => {
    const book = new ReceiptBook(10);
    const [a, b, c, d] = [hex32('a'), hex32('b'), hex32('c'), hex32('d')];
    const e = hex32('e');
    const f = hex32('f');
    for (const id of [a, b, c, d]) book.track(id);
    book.offer(receipt(a, 'included', 1, { batchId: e, leafIndex: 0 }));
    book.offer(receipt(b, 'included', 1, { batchId: e, leafIndex: 1 }));
    book.offer(receipt(c, 'included', 1, { batchId: f })); // another batch
    // d: acked, no receipt yet: nothing to apply an anchor to.
    const applied = book.applyAnchor(anchor(e, 'final', 2));
    expect(applied.map((r) => [r.recordId, r.status, r.revision, r.leafIndex])).toEqual([
      [a, 'final', 2, 0],
      [b, 'final', 2, 1],
    ]);
    expect(book.current(a)).toEqual(applied[0]);
    expect(book.current(a)).toMatchObject({
      blockNumber: 7,
      blockHash: hex32('4'),
      leafHash: hex32('d'),
    });
    expect(book.current(c)).toMatchObject({ status: 'included', revision: 1 });
    expect(book.current(d)).toBeUndefined();
    expect(book.receiptsOfBatch(e).map((r) => r.recordId)).toEqual([a, b]);
  });

  it('behavior: applyAnchor skips records already at that revision or higher, and batches it holds nothing of', () => {
    const book = new ReceiptBook(10);
    const [a, b] = [hex32('a'), hex32('b')];
    const e = hex32('e');
    book.track(a);
    book.track(b);
    book.offer(receipt(a, 'final', 3, { batchId: e }));
    book.offer(receipt(b, 'included', 1, { batchId: e }));
    expect(book.applyAnchor(anchor(e, 'included', 2)).map((r) => r.recordId)).toEqual([b]);
    expect(book.current(a)).toMatchObject({ status: 'final', revision: 3 });
    expect(book.applyAnchor(anchor(e, 'included', 2))).toEqual([]); // the same revision again
    expect(book.applyAnchor(anchor(hex32('9'), 'final', 5))).toEqual([]);
    expect(book.batchCount).toBe(1);
  });

  it('behavior: the batch index only holds tracked records: forgotten ones leave it and are not brought back', () => {
    const book = new ReceiptBook(3);
    // Each record in a batch of its own, every other one final (forgotten first): every
    // track beyond 3 forgets one, final or not.
    for (let i = 0; i < 50; i++) {
      const id = `0x${i.toString(16).padStart(64, '0')}`;
      const batchId = `0x${(i + 1000).toString(16).padStart(64, '0')}` as const;
      book.track(id);
      book.offer(receipt(id, i % 2 === 1 ? 'final' : 'included', 1, { batchId }));
      expect(book.size).toBeLessThanOrEqual(3);
      expect(book.batchCount).toBeLessThanOrEqual(book.size);
    }
    expect(book.batchCount).toBe(3);
    const forgottenBatch = `0x${(1000).toString(16).padStart(64, '0')}`;
    expect(book.receiptsOfBatch(forgottenBatch)).toEqual([]);
    expect(book.applyAnchor(anchor(forgottenBatch, 'reorged', 2))).toEqual([]);
    expect(book.has(`0x${'0'.repeat(64)}`)).toBe(false);
    expect(book.size).toBe(3);
  });

  it('behavior: a receipt of another batch moves the record in the index', () => {
    const book = new ReceiptBook(10);
    const a = hex32('a');
    book.track(a);
    book.offer(receipt(a, 'included', 1, { batchId: hex32('e') }));
    book.offer(receipt(a, 'included', 2, { batchId: hex32('f') }));
    expect(book.receiptsOfBatch(hex32('e'))).toEqual([]);
    expect(book.receiptsOfBatch(hex32('f')).map((r) => r.revision)).toEqual([2]);
    expect(book.batchCount).toBe(1);
  });

  it('error: maxRecords must be a positive integer', () => {
    expect(() => new ReceiptBook(0)).toThrow(StreamAnchorError);
    expect(() => new ReceiptBook(1.5)).toThrow(StreamAnchorError);
  });
});
