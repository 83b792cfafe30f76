import { canonicalPayload, contentHashOf, type Receipt } from '@streamanchor/protocol';
import { describe, expect, it } from 'vitest';
import { IntegrityError, NackError, SessionClosedError } from './errors';
import { StreamAnchorSession } from './session';

// Node has no RTCPeerConnection, and a node-datachannel peer would need a relay on the other
// side. These tests drive the session logic (matching, integrity, backpressure, receipts,
// close) through a minimal in-memory stand-in for the data channel; the real WebRTC path
// is exercised in Chromium by the end-to-end test (apps/web/e2e).
class FakeChannel extends EventTarget {
  readyState: RTCDataChannelState = 'open';
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  readonly sent: string[] = [];
  send(text: string): void {
    if (this.readyState !== 'open') throw new Error('InvalidStateError');
    this.sent.push(text);
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
  protocol: 'streamanchor.v1',
  sessionId: 'AAAAAAAAAAAAAAAAAAAAAA',
  subject: 'alice',
  topics: ['demo'],
  maxPayloadBytes: 16384,
  maxMessageBytes: 65536,
};
const hex32 = (digit: string) => `0x${digit.repeat(64)}` as const;
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

function openSession(options: { highWaterMark?: number } = {}) {
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
  });
  const ready = session.waitUntilReady(5000);
  channel.receive(HELLO);
  return { session, channel, pc, fetches, ready };
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

function receiptFor(recordId: `0x${string}`): Receipt {
  return {
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
  };
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
    expect(channel.sent.map((text) => JSON.parse(text).payload)).toEqual([1, 2]);
    for (const text of channel.sent) channel.receive(ackFor(text));
    await Promise.all(publishes);
  });

  it('behavior: receipts are delivered once per recordId, to listeners and the iterator', async () => {
    const { session, channel, ready } = openSession();
    await ready;
    const seen: string[] = [];
    session.onReceipt((receipt) => seen.push(receipt.recordId));
    const iterator = session.receipts();
    channel.receive({ type: 'receipt', receipt: receiptFor(hex32('a')) });
    channel.receive({ type: 'receipt', receipt: receiptFor(hex32('a')) });
    channel.receive({ type: 'receipt', receipt: receiptFor(hex32('b')) });
    expect(seen).toEqual([hex32('a'), hex32('b')]);
    expect((await iterator.next()).value?.recordId).toBe(hex32('a'));
    expect((await iterator.next()).value?.recordId).toBe(hex32('b'));
    const pendingNext = iterator.next();
    await session.close();
    await expect(pendingNext).resolves.toEqual({ value: undefined, done: true });
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

  it('error: a hello with another protocol version fails the open fast', async () => {
    const channel = new FakeChannel();
    const session = new StreamAnchorSession({
      pc: new FakePeerConnection() as unknown as RTCPeerConnection,
      channel: channel as unknown as RTCDataChannel,
      token: 't',
      fetch: async () => new Response(null, { status: 204 }),
      bufferHighWaterMark: 1024,
      bufferLowWaterMark: 100,
    });
    const ready = session.waitUntilReady(60_000);
    channel.receive({ ...HELLO, protocol: 'streamanchor.v2' });
    await expect(ready).rejects.toThrow(/another protocol version/);
  });
});
