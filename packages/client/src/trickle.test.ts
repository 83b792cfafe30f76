import { PROTOCOL_VERSION, problem } from '@streamanchor/protocol';
import { describe, expect, it } from 'vitest';
import { connect } from './connect';
import type { FetchLike } from './signaling';

// connect() with trickle ICE against a stand-in gateway (a fetch that records each request)
// and a stand-in peer connection whose candidates the test emits. The real path (Chromium and
// node-datachannel against the real gateway and relay) runs in apps/web/e2e and
// packages/cli/test; the relay's side in apps/rtc-relay/test/trickle.test.ts.

const OFFER = [
  'v=0',
  'o=- 1 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:Kd8s',
  'a=ice-pwd:9cBnR4vBF4mSgHkYQ0mU7f5q',
  'a=fingerprint:sha-256 5B:6C:81:2E',
  'a=mid:0',
  'a=sctp-port:5000',
  '',
].join('\r\n');
const candidate = (n: number) =>
  `candidate:${n} 1 udp 2122260223 192.168.1.${n} ${40000 + n} typ host generation 0`;

class FakeChannel extends EventTarget {
  readonly protocol = PROTOCOL_VERSION;
  readyState: RTCDataChannelState = 'connecting';
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  send() {}
  close() {}
  hello() {
    this.readyState = 'open';
    this.dispatchEvent(new Event('open'));
    const event = new Event('message') as Event & { data: string };
    event.data = JSON.stringify({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      sessionId: 'AAAAAAAAAAAAAAAAAAAAAA',
      subject: 'alice',
      topics: ['demo'],
      maxPayloadBytes: 16384,
      maxMessageBytes: 65536,
    });
    this.dispatchEvent(event);
  }
}

/** Gathers until the test says: candidates and the end come from `emit` and `complete`. */
class GatheringPeerConnection extends EventTarget {
  iceGatheringState: RTCIceGatheringState = 'gathering';
  connectionState: RTCPeerConnectionState = 'connecting';
  iceConnectionState: RTCIceConnectionState = 'checking';
  localDescription: { type: string; sdp: string } | null = null;
  remoteDescription: { type: string; sdp: string } | null = null;
  readonly channel = new FakeChannel();
  createDataChannel() {
    return this.channel;
  }
  async createOffer() {
    return { type: 'offer', sdp: OFFER };
  }
  async setLocalDescription(description: { type: string; sdp: string }) {
    this.localDescription = description;
  }
  async setRemoteDescription(description: { type: string; sdp: string }) {
    this.remoteDescription = description;
  }
  getConfiguration() {
    return {};
  }
  setConfiguration() {}
  emit(line: string) {
    const event = new Event('icecandidate') as Event & { candidate: unknown };
    event.candidate = { candidate: line, sdpMid: '0' };
    this.dispatchEvent(event);
  }
  complete() {
    this.iceGatheringState = 'complete';
    const event = new Event('icecandidate') as Event & { candidate: unknown };
    event.candidate = null;
    this.dispatchEvent(event);
    this.dispatchEvent(new Event('icegatheringstatechange'));
  }
  close() {
    this.connectionState = 'closed';
  }
}

interface Seen {
  method: string;
  at: number;
  headers: Record<string, string>;
  body: string;
}

/** A gateway: OPTIONS (Accept-Patch when `trickles`), POST 201, PATCH `patchStatus`, DELETE 204. */
function standInGateway({
  trickles,
  patchStatus = 204,
}: {
  trickles: boolean;
  patchStatus?: number;
}) {
  const seen: Seen[] = [];
  const started = Date.now();
  const fetch: FetchLike = async (url, init) => {
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    const method = init.method ?? 'GET';
    seen.push({ method, at: Date.now() - started, headers, body: String(init.body ?? '') });
    if (method === 'OPTIONS')
      return new Response(null, {
        status: 204,
        headers: trickles ? { 'accept-patch': 'application/trickle-ice-sdpfrag' } : {},
      });
    if (method === 'POST')
      return new Response('v=0\r\na=ice-ufrag:Zq7P\r\n', {
        status: 201,
        headers: { location: '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA', etag: '"Zq7P"' },
      });
    if (method === 'PATCH') {
      if (patchStatus === 204)
        return new Response(null, { status: 204, headers: { etag: '"Zq7P"' } });
      return new Response(JSON.stringify(problem('method_not_allowed')), {
        status: patchStatus,
        headers: { 'content-type': 'application/problem+json', allow: 'DELETE' },
      });
    }
    expect(url).toContain('/v1/sessions/');
    return new Response(null, { status: 204 });
  };
  return { seen, fetch };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, timeoutMs = 2000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

function connectWith(gateway: ReturnType<typeof standInGateway>, extra: object = {}) {
  let pc: GatheringPeerConnection | undefined;
  const session = connect({
    baseUrl: 'http://gateway.test',
    token: 'tok',
    fetch: gateway.fetch,
    iceGatheringTimeoutMs: 3000,
    createPeerConnection: () => {
      pc = new GatheringPeerConnection();
      return pc as unknown as RTCPeerConnection;
    },
    ...extra,
  });
  return { session, pc: () => pc! };
}

describe('connect: trickle ICE', () => {
  it('default: a gateway with Accept-Patch gets the offer at once, then the candidates by PATCH with If-Match, batched, then end-of-candidates', async () => {
    const gateway = standInGateway({ trickles: true });
    const { session, pc } = connectWith(gateway);
    // The POST does not wait for gathering (which has not even started to complete).
    await until(() => (pc()?.remoteDescription ?? null) !== null);
    expect(gateway.seen.map((r) => r.method)).toEqual(['OPTIONS', 'POST']);
    expect(gateway.seen[1]!.body).not.toContain('a=candidate:');

    pc().emit(candidate(1));
    pc().emit(candidate(2)); // within the batching window: one PATCH
    await until(() => gateway.seen.length === 3);
    await sleep(30);
    pc().emit(candidate(3));
    pc().complete(); // the end goes with the last candidate
    await until(() => gateway.seen.length === 4);
    pc().channel.hello();
    const opened = await session;

    const patches = gateway.seen.filter((r) => r.method === 'PATCH');
    expect(patches).toHaveLength(2);
    for (const patch of patches) {
      expect(patch.headers['content-type']).toBe('application/trickle-ice-sdpfrag');
      expect(patch.headers['if-match']).toBe('"Zq7P"');
      expect(patch.headers.authorization).toBe('Bearer tok');
      expect(patch.body).toMatch(
        /^a=ice-ufrag:Kd8s\r\na=ice-pwd:9cBnR4vBF4mSgHkYQ0mU7f5q\r\nm=application 9 UDP\/DTLS\/SCTP webrtc-datachannel\r\na=mid:0\r\n/,
      );
    }
    expect(patches[0]!.body).toContain(`a=${candidate(1)}\r\na=${candidate(2)}\r\n`);
    expect(patches[0]!.body).not.toContain('end-of-candidates');
    expect(patches[1]!.body).toMatch(
      new RegExp(`a=${candidate(3)}\\r\\na=end-of-candidates\\r\\n$`),
    );
    await opened.close();
  });

  it('behavior: a gateway without Accept-Patch gets every candidate in the offer, once gathering completed (no PATCH)', async () => {
    const gateway = standInGateway({ trickles: false });
    const { session, pc } = connectWith(gateway);
    await until(() => pc() !== undefined);
    await sleep(50);
    expect(gateway.seen.map((r) => r.method)).toEqual(['OPTIONS']);
    pc().localDescription = { type: 'offer', sdp: `${OFFER}a=${candidate(1)}\r\n` };
    pc().complete();
    await until(() => pc().remoteDescription !== null);
    pc().channel.hello();
    const opened = await session;
    expect(gateway.seen.map((r) => r.method)).toEqual(['OPTIONS', 'POST']);
    expect(gateway.seen[1]!.body).toContain(`a=${candidate(1)}`);
    await opened.close();
  });

  it('error: a PATCH answered 405 stops the trickle (no more PATCHes), and the session still opens', async () => {
    const gateway = standInGateway({ trickles: true, patchStatus: 405 });
    const { session, pc } = connectWith(gateway, { trickle: true });
    await until(() => (pc()?.remoteDescription ?? null) !== null);
    pc().emit(candidate(1));
    await until(() => gateway.seen.some((r) => r.method === 'PATCH'));
    await sleep(20);
    pc().emit(candidate(2));
    pc().complete();
    await sleep(50);
    expect(gateway.seen.filter((r) => r.method === 'PATCH')).toHaveLength(1);
    pc().channel.hello();
    const opened = await session;
    await opened.close();
  });
});
