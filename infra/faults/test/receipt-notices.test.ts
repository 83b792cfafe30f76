import { describe, expect, it } from 'vitest';
import { ReceiptNotices } from '../src/receipt-notices';

// How the fault publisher and the bench peer read receipts under protocol v2: one notice per
// record, as v1's `receipt` messages gave them.
const hex32 = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
const anchor = (batch: number, status: string, revision: number) => ({
  status,
  revision,
  batchId: hex32(1000 + batch),
  confirmations: 1,
});
const receipts = (batch: number, status: string, revision: number, records: number[]) => ({
  type: 'receipts',
  anchor: anchor(batch, status, revision),
  records: records.map((n) => ({ recordId: hex32(n), leafIndex: n })),
});
const anchoring = (batch: number, status: string, revision: number, records: number) => ({
  type: 'anchoring',
  anchor: anchor(batch, status, revision),
  records,
});
const seen = (notices: { recordId: string; status: string }[]) =>
  notices.map(({ recordId, status }) => `${Number.parseInt(recordId.slice(2), 16)} ${status}`);

describe('ReceiptNotices', () => {
  it('default: a receipts message is one notice per record, a later anchoring one per record of its batch', () => {
    const notices = new ReceiptNotices();
    expect(seen(notices.read(receipts(1, 'included', 1, [1, 2])))).toEqual([
      '1 included',
      '2 included',
    ]);
    expect(seen(notices.read(receipts(1, 'included', 1, [3])))).toEqual(['3 included']);
    expect(seen(notices.read(receipts(2, 'included', 1, [4])))).toEqual(['4 included']);
    expect(seen(notices.read(anchoring(1, 'reorged', 2, 3)))).toEqual([
      '1 reorged',
      '2 reorged',
      '3 reorged',
    ]);
    expect(notices.read(anchoring(1, 'included', 3, 3))[0]).toEqual({
      recordId: hex32(1),
      status: 'included',
      revision: 3,
      batchId: hex32(1001),
    });
  });

  it('behavior: a v1 receipt message is its one record', () => {
    const notices = new ReceiptNotices();
    const receipt = { recordId: hex32(7), status: 'final', revision: 4, batchId: hex32(1) };
    expect(notices.read({ type: 'receipt', receipt })).toEqual([receipt]);
    expect(notices.read({ type: 'ack', id: '1' })).toEqual([]);
  });

  it('behavior: an anchoring of an equal or lower revision, or of a batch not seen, is nothing', () => {
    const notices = new ReceiptNotices();
    notices.read(receipts(1, 'included', 3, [1]));
    expect(notices.read(anchoring(1, 'reorged', 2, 1))).toEqual([]);
    expect(notices.read(anchoring(1, 'included', 3, 1))).toEqual([]);
    expect(notices.read(anchoring(9, 'final', 5, 1))).toEqual([]);
    expect(seen(notices.read(anchoring(1, 'final', 4, 1)))).toEqual(['1 final']);
  });

  it('behavior: a batch is forgotten once final, and beyond maxBatches the oldest goes first', () => {
    const notices = new ReceiptNotices(3);
    notices.read(receipts(1, 'included', 1, [1]));
    notices.read(anchoring(1, 'final', 2, 1));
    expect(notices.batches).toBe(0);
    expect(notices.read(anchoring(1, 'reorged', 3, 1))).toEqual([]);
    notices.read(receipts(2, 'final', 1, [2])); // final at once: nothing to remember
    expect(notices.batches).toBe(0);
    for (let batch = 10; batch < 20; batch++) notices.read(receipts(batch, 'included', 1, [batch]));
    expect(notices.batches).toBe(3);
    expect(notices.read(anchoring(16, 'final', 2, 1))).toEqual([]);
    expect(seen(notices.read(anchoring(17, 'final', 2, 1)))).toEqual(['17 final']);
  });
});
