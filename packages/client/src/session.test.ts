import {
  canonicalPayload,
  contentHashOf,
  PROTOCOL_VERSION,
  type Receipt,
  type ReceiptAnchor,
  type ReceiptRecord,
  receiptOf,
  splitReceipt,
} from '@streamanchor/protocol';
import { describe, expect, it } from 'vitest';
import { IntegrityError, NackError, SessionClosedError, StreamAnchorError } from './errors';
import { StreamAnchorSession } from './session';

// Node has no RTCPeerConnection, and a node-datachannel peer would need a relay on the other
// side. These tests drive the session logic (matching, integrity, backpressure, receipts,
// close) through a minimal in-memory stand-in for the data channel; the real WebRTC path
// is exercised in Chromium by the end-to-end test (apps/web/e2e).
class FakeChannel extends EventTarget {
  constructor(readonly protocol: string = PROTOCOL_VERSION) {
    super();
  }
  readyState: RTCDataChannelState = 'open';
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  readonly sent: string[] = [];
  send(text: string): void {
    if (this.readyState !== 'open') throw new Error('InvalidStateError');
    this.sent.push(text);
  }
  /** Every publish sent, in order: under v2 one message may carry several, one per line. */
  lines(): string[] {
    return this.sent.flatMap((text) => text.split('\n'));
  }
  close(): void {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    this.dispatchEvent(new Event('close'));
  }
  /** A message from the relay. */
  receive(message: object): void {
    const event = new Event('message') as Event & { data: string };
    event.data = JSON.stringify(message);
    this.dispatchEvent(event);
  }
}

class FakePeerConnection extends EventTarget {
  connectionState: RTCPeerConnectionState = 'connected';
  close(): void {
    this.connectionState = 'closed';
  }
}

const HELLO = {
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  sessionId: 'AAAAAAAAAAAAAAAAAAAAAA',
  subject: 'alice',
  topics: ['demo'],
  maxPayloadBytes: 16384,
  maxMessageBytes: 65536,
};
const hex32 = (digit: string) => `0x${digit.repeat(64)}` as const;
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

function openSession(
  options: { highWaterMark?: number; maxTrackedRecords?: number; maxMessageBytes?: number } = {},
) {
  const channel = new FakeChannel();
  const pc = new FakePeerConnection();
  const fetches: { url: string; method: string; channelState: string }[] = [];
  const session = new StreamAnchorSession({
    pc: pc as unknown as RTCPeerConnection,
    channel: channel as unknown as RTCDataChannel,
    token: 'tok',
    fetch: async (url, init) => {
      fetches.push({ url, method: init.method ?? 'GET', channelState: channel.readyState });
      return new Response(null, { status: 204 });
    },
    bufferHighWaterMark: options.highWaterMark ?? 1024,
    bufferLowWaterMark: 100,
    maxTrackedRecords: options.maxTrackedRecords,
  });
  const ready = session.waitUntilReady(5000);
  channel.receive({ ...HELLO, maxMessageBytes: options.maxMessageBytes ?? HELLO.maxMessageBytes });
  return { session, channel, pc, fetches, ready };
}

/** A session on `channel`, before its hello. */
function sessionOn(channel: FakeChannel) {
  return new StreamAnchorSession({
    pc: new FakePeerConnection() as unknown as RTCPeerConnection,
    channel: channel as unknown as RTCDataChannel,
    token: 't',
    fetch: async () => new Response(null, { status: 204 }),
    bufferHighWaterMark: 1024,
    bufferLowWaterMark: 100,
  });
}

function ackFor(text: string, recordByte = 'a') {
  const message = JSON.parse(text) as { id: string; payload: unknown };
  return {
    type: 'ack',
    id: message.id,
    recordId: hex32(recordByte),
    contentHash: contentHashOf(canonicalPayload(message.payload)),
    acceptedAt: 1,
  };
}

function receiptFor(
  recordId: `0x${string}`,
  anchoring: Partial<Pick<Receipt, 'status' | 'confirmations' | 'revision' | 'blockHash'>> = {},
): Receipt {
  return {
    status: 'included',
    confirmations: 1,
    revision: 1,
    recordId,
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
    ...anchoring,
  };
}

/** The anchor half of receiptFor(…, anchoring), for `receipts` and `anchoring` messages. */
function anchorOf(
  anchoring: Partial<Pick<Receipt, 'status' | 'confirmations' | 'revision' | 'blockHash'>> = {},
): ReceiptAnchor {
  return splitReceipt(receiptFor(hex32('0'), anchoring)).anchor;
}

/** The record half of a receipt of `recordId`, at `leafIndex` of its batch. */
function recordHalf(recordId: `0x${string}`, leafIndex: number): ReceiptRecord {
  return {
    ...splitReceipt(receiptFor(recordId)).record,
    leafIndex,
    proof: [hex32(String(leafIndex))],
  };
}

/** Publishes one record per byte and acks it with recordId hex32(byte): records the session knows. */
async function ackRecords(
  session: StreamAnchorSession,
  channel: FakeChannel,
  bytes: string[],
): Promise<void> {
  const publishes = bytes.map((_, i) => session.publish('demo', i));
  await tick();
  const sent = channel.lines().slice(-bytes.length);
  // As a v2 relay answers: the acks together in one `acks` message.
  const acks = bytes.map((byte, i) => {
    const { type: _, ...fields } = ackFor(sent[i]!, byte);
    return fields;
  });
  channel.receive({ type: 'acks', acks });
  await Promise.all(publishes);
}

describe('StreamAnchorSession', () => {
  it('default: opens on hello; publish sends canonical JSON and resolves with the ack', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    expect(session.state).toBe('open');
    expect(session.hello?.subject).toBe('alice');
    const published = session.publish('demo', { b: 2, a: [1, 'x'] });
    await tick();
    expect(channel.sent).toEqual([
      '{"type":"publish","id":"1","topic":"demo","payload":{"a":[1,"x"],"b":2}}',
    ]);
    channel.receive(ackFor(channel.sent[0]!));
    await expect(published).resolves.toEqual({
      id: '1',
      topic: 'demo',
      recordId: hex32('a'),
      contentHash: contentHashOf('{"a":[1,"x"],"b":2}'),
      acceptedAt: 1,
    });
  });

  it('error: a nack rejects with NackError carrying code and message', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const published = session.publish('secret', 1, { id: 'mine' });
    await tick();
    channel.receive({ type: 'nack', id: 'mine', code: 'topic_not_allowed', message: 'no' });
    const error = await published.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NackError);
    expect(error).toMatchObject({ code: 'topic_not_allowed', id: 'mine', details: 'no' });
  });

  it('error: an ack with another content hash rejects with IntegrityError', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const published = session.publish('demo', { n: 1 });
    await tick();
    channel.receive({ ...ackFor(channel.sent[0]!), contentHash: hex32('9') });
    await expect(published).rejects.toBeInstanceOf(IntegrityError);
  });

  it('behavior: answers match in send order, a null-id nack answering the oldest raw send', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const first = session.publish('demo', 1);
    const raw = session.sendRaw('{not json');
    const second = session.publish('demo', 2);
    await tick();
    expect(channel.sent).toHaveLength(3);
    channel.receive(ackFor(channel.sent[0]!, 'a'));
    channel.receive({ type: 'nack', id: null, code: 'malformed_message', message: 'bad' });
    channel.receive(ackFor(channel.sent[2]!, 'b'));
    await expect(first).resolves.toMatchObject({ recordId: hex32('a') });
    await expect(raw).resolves.toMatchObject({ type: 'nack', code: 'malformed_message' });
    await expect(second).resolves.toMatchObject({ recordId: hex32('b') });
  });

  it('behavior: an acks message (v2) answers its publishes in order, each as an ack message would', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const first = session.publish('demo', 1);
    const raw = session.sendRaw('{"type":"publish","id":"raw","topic":"demo","payload":2}');
    const refused = session.publish('secret', 3);
    const last = session.publish('demo', 4);
    await tick();
    // The raw text goes alone; the two publishes after it share a message.
    expect(channel.sent).toHaveLength(3);
    const lines = channel.lines();
    expect(lines).toHaveLength(4);
    const fields = (text: string, byte: string) => {
      const { type: _, ...ack } = ackFor(text, byte);
      return ack;
    };
    channel.receive({
      type: 'acks',
      acks: [fields(lines[0]!, 'a'), fields(lines[1]!, 'b')],
    });
    channel.receive({ type: 'nack', id: '2', code: 'topic_not_allowed', message: 'no' });
    channel.receive({ type: 'acks', acks: [fields(lines[3]!, 'c')] });
    await expect(first).resolves.toMatchObject({ id: '1', recordId: hex32('a') });
    await expect(raw).resolves.toEqual({ type: 'ack', ...fields(lines[1]!, 'b') });
    await expect(refused).rejects.toBeInstanceOf(NackError);
    await expect(last).resolves.toMatchObject({ id: '3', recordId: hex32('c') });
    // Each acked record is tracked, as after an ack message.
    await expect(
      Promise.race([session.finalReceipt(hex32('b')), tick().then(() => 'waiting')]),
    ).resolves.toBe('waiting');
    await expect(
      Promise.race([session.finalReceipt(hex32('c')), tick().then(() => 'waiting')]),
    ).resolves.toBe('waiting');
  });

  it('behavior: sends wait while the channel buffer is above the high-water mark', async () => {
    const { session, channel, ready } = openSession({ highWaterMark: 1000 });
    await ready;
    channel.bufferedAmount = 5000;
    const publishes = [session.publish('demo', 1), session.publish('demo', 2)];
    await tick();
    expect(channel.sent).toHaveLength(0);
    channel.bufferedAmount = 50;
    channel.dispatchEvent(new Event('bufferedamountlow'));
    await tick();
    expect(channel.lines().map((text) => JSON.parse(text).payload)).toEqual([1, 2]);
    for (const text of channel.lines()) channel.receive(ackFor(text));
    await Promise.all(publishes);
  });

  it('behavior: publishes made in one task leave together as publish lines (v2), each message within maxMessageBytes', async () => {
    const { session, channel, ready } = openSession({ maxMessageBytes: 300 });
    await ready;
    const payloads = Array.from({ length: 10 }, (_, i) => ({ n: i, fill: 'f'.repeat(20) }));
    const publishes = payloads.map((payload) => session.publish('demo', payload));
    await tick();
    // Each line is 75 bytes: three lines and their two separators fit in 300 bytes, four do not.
    expect(channel.sent.map((text) => text.split('\n').length)).toEqual([3, 3, 3, 1]);
    for (const text of channel.sent)
      expect(new TextEncoder().encode(text).length).toBeLessThanOrEqual(300);
    expect(channel.lines().map((line) => JSON.parse(line).payload)).toEqual(payloads);
    channel.receive({
      type: 'acks',
      acks: channel.lines().map((line, i) => {
        const { type: _, ...fields } = ackFor(line, i.toString(16));
        return fields;
      }),
    });
    const acks = await Promise.all(publishes);
    expect(acks.map((ack) => ack.recordId)).toEqual(payloads.map((_, i) => hex32(i.toString(16))));
    // A publish awaited before the next goes alone.
    const alone = session.publish('demo', 'later');
    await tick();
    expect(channel.sent.at(-1)).toBe(
      '{"type":"publish","id":"11","topic":"demo","payload":"later"}',
    );
    channel.receive(ackFor(channel.sent.at(-1)!));
    await alone;
  });

  it('behavior: a v1 session sends each publish as a message of its own', async () => {
    const channel = new FakeChannel('streamanchor.v1');
    const session = sessionOn(channel);
    const ready = session.waitUntilReady(5000);
    channel.receive({ ...HELLO, protocol: 'streamanchor.v1' });
    await ready;
    const publishes = [1, 2, 3].map((n) => session.publish('demo', n));
    await tick();
    expect(channel.sent.map((text) => JSON.parse(text).payload)).toEqual([1, 2, 3]);
    for (const text of channel.sent) channel.receive(ackFor(text));
    await Promise.all(publishes);
  });

  it('behavior: every newer revision is delivered, to listeners and the iterator; duplicates, stale and unknown ones are not', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    await ackRecords(session, channel, ['a', 'b']);
    const seen: string[] = [];
    session.onReceipt((receipt) => seen.push(`${receipt.recordId.slice(2, 3)}${receipt.revision}`));
    const iterator = session.receipts();
    const send = (receipt: Receipt) => channel.receive({ type: 'receipt', receipt });
    const a = hex32('a');
    send(receiptFor(a)); // included, revision 1
    send(receiptFor(a)); // duplicate
    send(receiptFor(hex32('b')));
    send(receiptFor(hex32('9'))); // never acked in this session: ignored
    send(receiptFor(a, { status: 'reorged', confirmations: 0, revision: 2 }));
    // Out of order: revision 4 (final, after the re-inclusion) before revision 3.
    send(receiptFor(a, { status: 'final', confirmations: 12, revision: 4, blockHash: hex32('3') }));
    send(receiptFor(a, { status: 'included', revision: 3, blockHash: hex32('3') })); // stale
    send(receiptFor(a, { status: 'final', confirmations: 12, revision: 4, blockHash: hex32('3') }));
    expect(seen).toEqual(['a1', 'b1', 'a2', 'a4']);
    expect(session.receiptFor(a)).toMatchObject({
      status: 'final',
      revision: 4,
      blockHash: hex32('3'),
    });
    expect(session.receiptFor(hex32('b'))).toMatchObject({ status: 'included', revision: 1 });
    expect(session.receiptFor(hex32('9'))).toBeUndefined();

    const revisions = [];
    for (let i = 0; i < 4; i++) revisions.push((await iterator.next()).value?.revision);
    expect(revisions).toEqual([1, 1, 2, 4]);
    const pendingNext = iterator.next();
    await session.close();
    await expect(pendingNext).resolves.toEqual({ value: undefined, done: true });
  });

  it('behavior: finalReceipt waits through included and reorged for the final receipt', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    await ackRecords(session, channel, ['a', 'b']);
    const a = hex32('a');
    expect(session.receiptFor(a)).toBeUndefined();
    let settled = false;
    const final = session.finalReceipt(a).finally(() => {
      settled = true;
    });
    channel.receive({ type: 'receipt', receipt: receiptFor(a) });
    channel.receive({
      type: 'receipt',
      receipt: receiptFor(a, { status: 'reorged', confirmations: 0, revision: 2 }),
    });
    channel.receive({
      type: 'receipt',
      receipt: receiptFor(a, { revision: 3, blockHash: hex32('3') }),
    });
    await tick();
    expect(settled).toBe(false);
    const finalReceipt = receiptFor(a, {
      status: 'final',
      confirmations: 12,
      revision: 4,
      blockHash: hex32('3'),
    });
    channel.receive({ type: 'receipt', receipt: finalReceipt });
    await expect(final).resolves.toEqual(finalReceipt);
    // Held already: resolves at once, also after the session closed.
    await session.close();
    await expect(session.finalReceipt(a)).resolves.toEqual(finalReceipt);
  });

  it('error: finalReceipt rejects for unknown records, on abort and when the session closes', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    await ackRecords(session, channel, ['a']);
    const unknown = await session.finalReceipt(hex32('9')).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(StreamAnchorError);
    expect((unknown as StreamAnchorError).shortMessage).toBe('Not a record this session tracks');

    const controller = new AbortController();
    const aborted = session.finalReceipt(hex32('a'), { signal: controller.signal });
    controller.abort(new Error('gave up'));
    await expect(aborted).rejects.toThrow('gave up');

    const closing = session.finalReceipt(hex32('a'));
    await session.close();
    await expect(closing).rejects.toBeInstanceOf(SessionClosedError);
    await expect(session.finalReceipt(hex32('a'))).rejects.toBeInstanceOf(SessionClosedError);
  });

  it('behavior: the session remembers at most maxTrackedRecords records, forgetting final ones first', async () => {
    const { session, channel, ready } = openSession({ maxTrackedRecords: 2 });
    await ready;
    await ackRecords(session, channel, ['a', 'b']);
    channel.receive({
      type: 'receipt',
      receipt: receiptFor(hex32('b'), { status: 'final', confirmations: 12, revision: 2 }),
    });
    const waiting = session.finalReceipt(hex32('a'));
    await ackRecords(session, channel, ['c']); // forgets b (final), keeps a (not final yet)
    expect(session.receiptFor(hex32('b'))).toBeUndefined();
    await ackRecords(session, channel, ['d']); // nothing final: forgets a, the oldest
    await expect(waiting).rejects.toThrow(/forgot the record/);
    const seen: string[] = [];
    session.onReceipt((receipt) => seen.push(receipt.recordId));
    for (const byte of ['a', 'b', 'c', 'd'])
      channel.receive({ type: 'receipt', receipt: receiptFor(hex32(byte)) });
    expect(seen).toEqual([hex32('c'), hex32('d')]);
  });

  it('behavior: close rejects pending publishes, DELETEs the session, then closes the transport', async () => {
    const { session, channel, pc, fetches, ready } = openSession();
    await ready;
    session.attachResource({
      answerSdp: 'v=0',
      url: 'http://gw.test/v1/sessions/x',
      etag: null,
      iceServers: [],
    });
    const published = session.publish('demo', 1);
    await tick();
    await session.close();
    await expect(published).rejects.toBeInstanceOf(SessionClosedError);
    expect(session.state).toBe('closed');
    expect(channel.readyState).toBe('closed');
    expect(pc.connectionState).toBe('closed');
    // DELETE goes out while the channel is still up (else the relay drops the session first).
    expect(fetches).toEqual([
      { url: 'http://gw.test/v1/sessions/x', method: 'DELETE', channelState: 'open' },
    ]);
    await expect(session.publish('demo', 2)).rejects.toBeInstanceOf(SessionClosedError);
  });

  it('behavior: a receipts message (v2) delivers each record its receipt, as receipt messages would', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    await ackRecords(session, channel, ['a', 'b']);
    const seen: Receipt[] = [];
    session.onReceipt((receipt) => seen.push(receipt));
    const anchor = anchorOf();
    const records = [
      recordHalf(hex32('a'), 0),
      recordHalf(hex32('9'), 1),
      recordHalf(hex32('b'), 2),
    ];
    channel.receive({ type: 'receipts', anchor, records });
    // hex32('9') was never acked in this session: ignored, as its receipt message would be.
    const expected = [receiptOf(anchor, records[0]!), receiptOf(anchor, records[2]!)];
    expect(seen).toEqual(expected);
    expect(session.receiptFor(hex32('b'))).toEqual(expected[1]);
    expect(session.receiptFor(hex32('b'))).toMatchObject({ leafIndex: 2, proof: [hex32('2')] });
    // Sent again (same revision): duplicates, not delivered again.
    channel.receive({ type: 'receipts', anchor, records });
    expect(seen).toHaveLength(2);
    // A receipts message of a lower revision than the one held: stale.
    channel.receive({
      type: 'receipts',
      anchor: anchorOf({ revision: 3 }),
      records: [records[0]],
    });
    channel.receive({ type: 'receipts', anchor: anchorOf({ revision: 2 }), records: [records[0]] });
    expect(seen.map((r) => r.revision)).toEqual([1, 1, 3]);
  });

  it('behavior: an anchoring message (v2) gives every held record of its batch the new anchor', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    await ackRecords(session, channel, ['a', 'b', 'c']);
    const seen: string[] = [];
    session.onReceipt((r) => seen.push(`${r.recordId.slice(2, 3)}${r.revision}${r.status}`));
    const a = recordHalf(hex32('a'), 0);
    const b = recordHalf(hex32('b'), 1);
    channel.receive({ type: 'receipts', anchor: anchorOf(), records: [a, b] });
    // c's batch is another one.
    channel.receive({
      type: 'receipt',
      receipt: { ...receiptFor(hex32('c')), batchId: hex32('7') },
    });
    const final = session.finalReceipt(hex32('b'));
    const finalAnchor = anchorOf({
      status: 'final',
      confirmations: 12,
      revision: 2,
      blockHash: hex32('3'),
    });
    channel.receive({ type: 'anchoring', anchor: finalAnchor, records: 2 });
    expect(seen).toEqual(['a1included', 'b1included', 'c1included', 'a2final', 'b2final']);
    // The record's own half (leaf, proof) is kept; the anchor's is the new one.
    await expect(final).resolves.toEqual(receiptOf(finalAnchor, b));
    expect(session.receiptFor(hex32('a'))).toEqual(receiptOf(finalAnchor, a));
    expect(session.receiptFor(hex32('c'))).toMatchObject({ status: 'included', revision: 1 });
  });

  it('behavior: an anchoring message of a lower or equal revision, or of a batch the session holds nothing of, is ignored', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    await ackRecords(session, channel, ['a']);
    const seen: Receipt[] = [];
    session.onReceipt((receipt) => seen.push(receipt));
    const a = recordHalf(hex32('a'), 0);
    channel.receive({ type: 'receipts', anchor: anchorOf({ revision: 3 }), records: [a] });
    channel.receive({
      type: 'anchoring',
      anchor: anchorOf({ status: 'reorged', confirmations: 0, revision: 2 }),
      records: 1,
    });
    channel.receive({ type: 'anchoring', anchor: anchorOf({ revision: 3 }), records: 1 });
    channel.receive({
      type: 'anchoring',
      anchor: { ...anchorOf({ status: 'final', revision: 9 }), batchId: hex32('8') },
      records: 1,
    });
    expect(seen.map((r) => r.revision)).toEqual([3]);
    expect(session.receiptFor(hex32('a'))).toEqual(receiptOf(anchorOf({ revision: 3 }), a));
  });

  it('behavior: an anchoring message does not bring back a record forgotten by maxTrackedRecords', async () => {
    const { session, channel, ready } = openSession({ maxTrackedRecords: 2 });
    await ready;
    await ackRecords(session, channel, ['a', 'b']);
    channel.receive({
      type: 'receipts',
      anchor: anchorOf(),
      records: [recordHalf(hex32('a'), 0), recordHalf(hex32('b'), 1)],
    });
    await ackRecords(session, channel, ['c']); // nothing final: forgets a, the oldest
    const seen: string[] = [];
    session.onReceipt((receipt) => seen.push(receipt.recordId));
    channel.receive({ type: 'anchoring', anchor: anchorOf({ revision: 2 }), records: 2 });
    expect(seen).toEqual([hex32('b')]);
    expect(session.receiptFor(hex32('a'))).toBeUndefined();
    expect(session.receiptFor(hex32('b'))).toMatchObject({ revision: 2 });
  });

  it('behavior: a session whose channel was opened with v1 accepts the v1 hello of the relay', async () => {
    const channel = new FakeChannel('streamanchor.v1');
    const session = sessionOn(channel);
    const ready = session.waitUntilReady(60_000);
    channel.receive({ ...HELLO, protocol: 'streamanchor.v1' });
    await expect(ready).resolves.toBeUndefined();
    expect(session.hello?.protocol).toBe('streamanchor.v1');
  });

  it('error: a hello with another protocol version than the channel fails the open fast', async () => {
    for (const protocol of ['streamanchor.v1', 'streamanchor.v9']) {
      const channel = new FakeChannel();
      const session = sessionOn(channel);
      const ready = session.waitUntilReady(60_000);
      channel.receive({ ...HELLO, protocol });
      await expect(ready).rejects.toThrow(/another protocol version/);
      expect(session.state).toBe('connecting');
      expect(session.hello).toBeUndefined();
      // Also when the hello came before anyone waited.
      await expect(session.waitUntilReady(60_000)).rejects.toThrow(/another protocol version/);
    }
  });
});
