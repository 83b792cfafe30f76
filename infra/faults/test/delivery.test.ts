import { canonicalPayload, contentHashOf, type DeliveredRecord } from '@streamanchor/protocol';
import { describe, expect, it } from 'vitest';
import type { AckedRecord } from '../src/publisher-client';
import { checkDelivery } from '../src/subscribers';

// The subscriber checker itself, on hand-made deliveries: it passes what §5.9 promises and
// names each broken promise (so a green subscriber scenario means something).
const hex = (n: number) => `0x${n.toString(16).padStart(64, '0')}` as `0x${string}`;

function publish(publisher: string, n: number, position: number) {
  const payload = { n, publisher };
  const ack: AckedRecord = {
    id: `${publisher}-${n}`,
    recordId: hex(position),
    contentHash: contentHashOf(canonicalPayload(payload)),
    acceptedAt: 1_765_000_000_000 + position,
  };
  const record: DeliveredRecord = {
    position,
    recordId: ack.recordId as `0x${string}`,
    subject: 'demo',
    contentHash: ack.contentHash as `0x${string}`,
    acceptedAt: ack.acceptedAt,
    payload,
  };
  return { ack, record };
}

/** Two publishers, interleaved: a's records at odd positions, b's at even ones. */
function stream(count: number) {
  const published = Array.from({ length: count }, (_, i) =>
    publish(i % 2 === 0 ? 'a' : 'b', Math.floor(i / 2), i + 1),
  );
  const acks = (name: string) =>
    new Map(
      published.filter((p) => p.ack.id.startsWith(`${name}-`)).map((p) => [p.ack.recordId, p.ack]),
    );
  return { records: published.map((p) => p.record), acked: [acks('a'), acks('b')] };
}

describe('checkDelivery', () => {
  it('default: positions 1… once each, in order, every acked record with its ack fields', () => {
    const { records, acked } = stream(10);
    expect(checkDelivery({ records, acked, subject: 'demo' })).toEqual([]);
  });

  it('error: a gap, a duplicate, a record missing', () => {
    const { records, acked } = stream(10);
    expect(
      checkDelivery({
        records: [...records.slice(0, 4), ...records.slice(5)],
        acked,
        subject: 'demo',
      }),
    ).toEqual([
      'position 6 came after 4 (expected 5: a gap)',
      `acked record ${hex(5)} (a-2) never delivered`,
    ]);
    expect(
      checkDelivery({ records: [...records.slice(0, 5), records[4]!], acked, subject: 'demo' }),
    ).toEqual([
      'position 5 came after 5 (expected 6: a duplicate or out of order)',
      `record ${hex(5)} delivered twice`,
      // Per publisher: a's missing ones, then b's.
      ...[7, 9, 6, 8, 10].map(
        (p) =>
          `acked record ${hex(p)} (${p % 2 ? 'a' : 'b'}-${Math.floor((p - 1) / 2)}) never delivered`,
      ),
    ]);
  });

  it("error: a publisher's records out of its ack order, other fields, a payload not hashing to contentHash", () => {
    const { records, acked } = stream(4);
    // a's two acks swapped: a-1 was acked first, yet holds the later position.
    const [first, second] = [...acked[0]!.values()];
    const swapped = new Map([
      [second!.recordId, second!],
      [first!.recordId, first!],
    ]);
    expect(checkDelivery({ records, acked: [swapped, acked[1]!], subject: 'demo' })).toEqual([
      'a-0 at position 1, before a-1 (position 3), acked to the same publisher before it',
    ]);
    const changed = records.map((r, i) =>
      i === 1 ? { ...r, acceptedAt: r.acceptedAt + 1, payload: { n: 99 } } : r,
    );
    expect(checkDelivery({ records: changed, acked, subject: 'demo' })).toEqual([
      `b-0: delivered {"subject":"demo","contentHash":"${records[1]!.contentHash}","acceptedAt":${records[1]!.acceptedAt + 1}}, acked {"subject":"demo","contentHash":"${records[1]!.contentHash}","acceptedAt":${records[1]!.acceptedAt}}`,
      'b-0: its payload does not hash to the acked contentHash',
    ]);
  });

  it('behavior: records no publisher got an ack for pass only up to `unacked`', () => {
    const { records, acked } = stream(6);
    const withoutLast = [acked[0]!, new Map([...acked[1]!].slice(0, 2))];
    expect(checkDelivery({ records, acked: withoutLast, subject: 'demo', unacked: 1 })).toEqual([]);
    expect(checkDelivery({ records, acked: withoutLast, subject: 'demo' })).toEqual([
      '1 records delivered that no publisher got an ack for (at most 0 allowed)',
    ]);
  });
});
