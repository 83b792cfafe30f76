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
import {
  IntegrityError,
  NackError,
  SessionClosedError,
  StreamAnchorError,
  SubscriptionError,
} from './errors';
import { StreamAnchorSession } from './session';
import { type SubscribedRecord, type Subscription, verifyDeliveredRecord } from './subscription';

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

  it('behavior: the relay_draining notice (nack, id null) answers no publish: it sets draining and calls onDraining once', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const calls: boolean[] = [];
    session.onDraining(() => calls.push(session.draining));
    expect(session.draining).toBe(false);
    const first = session.publish('demo', 1);
    const second = session.publish('demo', 2);
    await tick();
    const [firstText, secondText] = channel.lines();
    channel.receive(ackFor(firstText!, 'a'));
    channel.receive({ type: 'nack', id: null, code: 'relay_draining', message: 'reconnect' });
    channel.receive({ type: 'nack', id: null, code: 'relay_draining', message: 'again' });
    // Publishes the relay got after its notice are nacked relay_draining, each by its id.
    channel.receive({
      type: 'nack',
      id: (JSON.parse(secondText!) as { id: string }).id,
      code: 'relay_draining',
      message: 'reconnect',
    });
    await expect(first).resolves.toMatchObject({ recordId: hex32('a') });
    await expect(second).rejects.toMatchObject({ name: 'NackError', code: 'relay_draining' });
    expect(calls).toEqual([true]);
    expect(session.state).toBe('open');

    // The relay then closes the session: the reason says it drained.
    channel.close();
    expect(session.state).toBe('closed');
    expect(session.closeReason).toMatch(/relay_draining/);
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

/** A record of a topic as the relay delivers it (§5.9), its content hash the payload's. */
function delivered(position: number, payload: unknown = { n: position }) {
  return {
    position,
    recordId: hex32(position.toString(16).slice(-1)),
    subject: 'bob',
    contentHash: contentHashOf(canonicalPayload(payload)),
    acceptedAt: 1000 + position,
    payload,
  };
}

/** The last message sent, parsed (subscribe and unsubscribe go as messages of their own). */
const lastSent = (channel: FakeChannel) => JSON.parse(channel.sent.at(-1)!);

/** Subscribes to `topic` and answers as the relay would: `subscribed` with `after` and `head`. */
async function subscribed(
  session: StreamAnchorSession,
  channel: FakeChannel,
  topic: string,
  fields: { after: number; head: number },
): Promise<Subscription> {
  const subscription = session.subscribe(topic, { after: fields.after });
  await tick();
  channel.receive({ type: 'subscribed', id: lastSent(channel).id, topics: [{ topic, ...fields }] });
  return subscription;
}

const positions = (records: SubscribedRecord[]) => records.map((record) => record.position);

describe('StreamAnchorSession subscriptions', () => {
  it('default: subscribe sends one subscribe message and resolves on subscribed; records come in order, to listeners and the iterator', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const pending = session.subscribe('demo', { after: 41 });
    await tick();
    expect(channel.sent).toEqual([
      '{"type":"subscribe","id":"s1","topics":[{"topic":"demo","after":41}]}',
    ]);
    channel.receive({
      type: 'subscribed',
      id: 's1',
      topics: [{ topic: 'demo', after: 41, head: 43 }],
    });
    const subscription = await pending;
    expect(subscription).toMatchObject({ topic: 'demo', startedAfter: 41, head: 43, position: 41 });
    const heard: SubscribedRecord[] = [];
    subscription.onRecord((record) => heard.push(record));
    const iterator = subscription[Symbol.asyncIterator]();
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(42), delivered(43)] });
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(44)] });
    expect(positions(heard)).toEqual([42, 43, 44]);
    expect(heard[0]).toEqual({ topic: 'demo', ...delivered(42) });
    expect(subscription.position).toBe(44);
    const read = [];
    for (let i = 0; i < 3; i++) read.push((await iterator.next()).value?.position);
    expect(read).toEqual([42, 43, 44]);
    // Without `after`: live only, the message says so by leaving it out.
    const live = session.subscribe('chat');
    await tick();
    expect(lastSent(channel)).toEqual({ type: 'subscribe', id: 's2', topics: [{ topic: 'chat' }] });
    channel.receive({
      type: 'subscribed',
      id: 's2',
      topics: [{ topic: 'chat', after: 7, head: 7 }],
    });
    await expect(live).resolves.toMatchObject({ topic: 'chat', startedAfter: 7, position: 7 });
  });

  it('behavior: records go to their topic subscription; duplicates at or below the position are dropped', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const demo = await subscribed(session, channel, 'demo', { after: 0, head: 5 });
    const chat = await subscribed(session, channel, 'chat', { after: 10, head: 10 });
    const got: Record<string, number[]> = { demo: [], chat: [] };
    demo.onRecord((record) => got[record.topic]!.push(record.position));
    chat.onRecord((record) => got[record.topic]!.push(record.position));
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(1), delivered(2)] });
    channel.receive({ type: 'records', topic: 'chat', records: [delivered(11)] });
    // A resume's overlap and a repeat: dropped; only what is past the position counts.
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(2), delivered(3)] });
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(1)] });
    channel.receive({ type: 'records', topic: 'chat', records: [delivered(9), delivered(12)] });
    // A topic the session is not subscribed to: ignored.
    channel.receive({ type: 'records', topic: 'other', records: [delivered(1)] });
    expect(got).toEqual({ demo: [1, 2, 3], chat: [11, 12] });
    expect([demo.position, chat.position]).toEqual([3, 12]);
  });

  it('behavior: batch notices go to their topic subscription’s onBatch listeners', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const demo = await subscribed(session, channel, 'demo', { after: 0, head: 0 });
    const batches: unknown[] = [];
    const stop = demo.onBatch((batch) => batches.push(batch));
    const anchor = {
      status: 'final',
      confirmations: 12,
      revision: 2,
      batchId: `0x${'55'.repeat(32)}`,
      merkleRoot: `0x${'66'.repeat(32)}`,
      recordCount: 3,
      chainId: 31337,
      contract: `0x${'77'.repeat(20)}`,
      txHash: `0x${'88'.repeat(32)}`,
      blockNumber: 12,
      blockHash: `0x${'99'.repeat(32)}`,
      logIndex: 0,
    };
    const message = { type: 'batch', topic: 'demo', anchor, positions: [[1, 3]] };
    channel.receive(message);
    channel.receive({ ...message, topic: 'other' });
    expect(batches).toEqual([message]);
    stop();
    channel.receive(message);
    expect(batches).toHaveLength(1);
  });

  it('behavior: records arriving right after subscribed, before anyone listens, are kept for the first consumers', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const pending = session.subscribe('demo', { after: 0 });
    await tick();
    // The answer and the first records in one go, before subscribe()'s caller resumes.
    channel.receive({
      type: 'subscribed',
      id: 's1',
      topics: [{ topic: 'demo', after: 0, head: 2 }],
    });
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(1), delivered(2)] });
    const subscription = await pending;
    await tick();
    const heard: number[] = [];
    const off = subscription.onRecord((record) => {
      heard.push(record.position);
      if (record.position === 3) off();
    });
    // Handed over in a microtask (records meanwhile join the queue): the order holds.
    expect(heard).toEqual([]);
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(3), delivered(4)] });
    expect(heard).toEqual([]);
    await tick();
    expect(heard).toEqual([1, 2, 3]);
    expect(subscription.position).toBe(4);
  });

  it('behavior: unsubscribe waits for unsubscribed; ended resolves with requested and the position; the iterator ends', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const subscription = await subscribed(session, channel, 'demo', { after: 0, head: 0 });
    const iterator = subscription[Symbol.asyncIterator]();
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(1), delivered(2)] });
    let done = false;
    const unsubscribing = subscription.unsubscribe().then(() => {
      done = true;
    });
    await tick();
    expect(lastSent(channel)).toEqual({ type: 'unsubscribe', id: 'u2', topics: ['demo'] });
    // Records sent before the answer still count.
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(3)] });
    expect(done).toBe(false);
    channel.receive({ type: 'unsubscribed', id: 'u2', topics: ['demo'], reason: 'requested' });
    await unsubscribing;
    await expect(subscription.ended).resolves.toEqual({ reason: 'requested', after: 3 });
    expect(subscription.isEnded).toBe(true);
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(4)] });
    const read = [];
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) read.push(r.value);
    expect(positions(read)).toEqual([1, 2, 3]);
    // Already ended: nothing is sent.
    const sent = channel.sent.length;
    await subscription.unsubscribe();
    expect(channel.sent).toHaveLength(sent);
  });

  it('behavior: the relay ends a subscription on its own (id null) without taking a pending answer', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const subscription = await subscribed(session, channel, 'demo', { after: 5, head: 9 });
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(6)] });
    const published = session.publish('demo', 1);
    await tick();
    channel.receive({
      type: 'unsubscribed',
      id: null,
      topics: ['demo'],
      reason: 'history_unavailable',
      after: 6,
    });
    await expect(subscription.ended).resolves.toEqual({ reason: 'history_unavailable', after: 6 });
    channel.receive(ackFor(channel.sent.at(-1)!, 'b'));
    await expect(published).resolves.toMatchObject({ recordId: hex32('b') });
    // Nobody listened: the record waited for the first consumer, which gets it, then the end.
    const read: SubscribedRecord[] = [];
    for await (const record of subscription) read.push(record);
    expect(positions(read)).toEqual([6]);
  });

  it('behavior: subscribing again to a topic replaces its subscription, which ends as requested', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const first = await subscribed(session, channel, 'demo', { after: 0, head: 3 });
    first.onRecord(() => undefined);
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(1)] });
    const second = await subscribed(session, channel, 'demo', { after: 0, head: 3 });
    await expect(first.ended).resolves.toEqual({ reason: 'requested', after: 1 });
    const heard: number[] = [];
    second.onRecord((record) => heard.push(record.position));
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(1), delivered(2)] });
    expect(heard).toEqual([1, 2]);
    expect(first.position).toBe(1);
  });

  it('behavior: answers stay matched in send order across publishes and subscribes', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const first = session.publish('demo', 1);
    const subscription = session.subscribe('demo');
    const second = session.publish('demo', 2);
    await tick();
    // The subscribe goes alone, between the two publishes.
    expect(channel.sent.map((text) => JSON.parse(text).type)).toEqual([
      'publish',
      'subscribe',
      'publish',
    ]);
    channel.receive(ackFor(channel.sent[0]!, 'a'));
    channel.receive({
      type: 'subscribed',
      id: 's1',
      topics: [{ topic: 'demo', after: 1, head: 1 }],
    });
    channel.receive(ackFor(channel.sent[2]!, 'b'));
    await expect(first).resolves.toMatchObject({ recordId: hex32('a') });
    await expect(subscription).resolves.toMatchObject({ topic: 'demo', startedAfter: 1 });
    await expect(second).resolves.toMatchObject({ recordId: hex32('b') });
  });

  it('error: a refused subscribe or unsubscribe rejects with SubscriptionError carrying the nack code', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    for (const code of ['topic_not_allowed', 'too_many_subscriptions', 'invalid_message']) {
      const pending = session.subscribe('admin');
      await tick();
      const { id } = lastSent(channel);
      channel.receive({ type: 'nack', id, code, message: `refused: ${code}` });
      const error = await pending.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SubscriptionError);
      expect(error).toBeInstanceOf(NackError);
      expect(error).toMatchObject({
        code,
        id,
        topic: 'admin',
        action: 'subscribe',
        details: `refused: ${code}`,
        shortMessage: `subscribe "admin" refused: ${code}`,
      });
    }
    const subscription = await subscribed(session, channel, 'demo', { after: 0, head: 0 });
    const unsubscribing = subscription.unsubscribe();
    await tick();
    channel.receive({
      type: 'nack',
      id: lastSent(channel).id,
      code: 'rate_limited',
      message: 'slow down',
      retryAfterMs: 10,
    });
    await expect(unsubscribing).rejects.toMatchObject({
      name: 'SubscriptionError',
      code: 'rate_limited',
      action: 'unsubscribe',
    });
    expect(subscription.isEnded).toBe(false);
  });

  it('error: closing the session rejects ended with SessionClosedError; the iterator yields what it holds, then throws', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const subscription = await subscribed(session, channel, 'demo', { after: 0, head: 0 });
    const iterator = subscription[Symbol.asyncIterator]();
    channel.receive({ type: 'records', topic: 'demo', records: [delivered(1)] });
    const pendingSubscribe = session.subscribe('chat');
    await tick();
    await session.close();
    await expect(subscription.ended).rejects.toBeInstanceOf(SessionClosedError);
    await expect(pendingSubscribe).rejects.toBeInstanceOf(SessionClosedError);
    await expect(iterator.next()).resolves.toMatchObject({ value: { position: 1 }, done: false });
    await expect(iterator.next()).rejects.toBeInstanceOf(SessionClosedError);
    // Nothing left to stop.
    await expect(subscription.unsubscribe()).resolves.toBeUndefined();
    await expect(session.subscribe('demo')).rejects.toBeInstanceOf(SessionClosedError);
  });

  it('behavior: verifyDeliveredRecord checks the content hash against the canonical payload', () => {
    const record = delivered(1, { b: [1, 'x'], a: 'é' });
    expect(verifyDeliveredRecord(record)).toBe(true);
    expect(verifyDeliveredRecord({ ...record, payload: { a: 'é', b: [1, 'y'] } })).toBe(false);
    expect(verifyDeliveredRecord({ ...record, payload: '\ud800' })).toBe(false);
  });
});
