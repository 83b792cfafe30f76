import {
  IntegrityError,
  NackError,
  SessionClosedError,
  SessionRequestError,
  StreamAnchorSession,
} from '@streamanchor/client';
import { canonicalPayload, contentHashOf, PROTOCOL_VERSION } from '@streamanchor/protocol';
import { describe, expect, it, vi } from 'vitest';
import {
  HandoverError,
  type HandoverEvent,
  type HandoverSession,
  keptNothing,
  SessionHandover,
} from './session-handover';

// The handover drives real SDK sessions (StreamAnchorSession: its drain notice, nacks, close
// and rejections), each over an in-memory stand-in for the data channel whose other end the
// test plays, as packages/client/src/session.test.ts does: a node-datachannel peer in the
// test process would need a relay and stalls under load. test/cli.test.ts runs the real
// thing: the CLI against a stack of two relays, one of them drained.
class FakeChannel extends EventTarget {
  readonly protocol = PROTOCOL_VERSION;
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

let recordIds = 0;

/** One session and the relay's end of its channel, played by the test. */
function relaySession() {
  const channel = new FakeChannel();
  const session = new StreamAnchorSession({
    pc: new FakePeerConnection() as unknown as RTCPeerConnection,
    channel: channel as unknown as RTCDataChannel,
    token: 'token',
    fetch: async () => new Response(null, { status: 204 }),
    bufferHighWaterMark: 1 << 20,
    bufferLowWaterMark: 1 << 18,
  });
  channel.receive({
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    sessionId: 'AAAAAAAAAAAAAAAAAAAAAA',
    subject: 'alice',
    topics: ['demo'],
    maxPayloadBytes: 16384,
    maxMessageBytes: 65536,
  });
  /** The publishes the relay got, in order (v2 publish lines split). */
  const publishes = () =>
    channel.sent
      .flatMap((text) => text.split('\n'))
      .map((line) => JSON.parse(line) as { id: string; payload: unknown });
  return {
    session,
    channel,
    publishes,
    ack(ids: string[]) {
      const byId = new Map(publishes().map((publish) => [publish.id, publish.payload]));
      channel.receive({
        type: 'acks',
        acks: ids.map((id) => ({
          id,
          recordId: `0x${(++recordIds).toString(16).padStart(64, '0')}`,
          contentHash: contentHashOf(canonicalPayload(byId.get(id))),
          acceptedAt: 1_764_000_000_000,
        })),
      });
    },
    drainNotice() {
      channel.receive({ type: 'nack', id: null, code: 'relay_draining', message: 'reconnect' });
    },
  };
}

type Relay = ReturnType<typeof relaySession>;

/** A handover of `first`; `open` answers with the next of `next` (a relay, or an error to throw). */
function handoverOf(first: Relay, next: (Relay | Error)[], options: { tries?: number } = {}) {
  const events: HandoverEvent[] = [];
  let opened = 0;
  const handover = new SessionHandover(first.session, {
    open: async () => {
      const answer = next[opened++];
      if (answer === undefined) throw new Error('no more sessions in this test');
      if (answer instanceof Error) throw answer;
      return answer.session;
    },
    onSession: () => {},
    report: (event) => events.push(event),
    tries: options.tries,
    backoff: () => 0,
    signal: new AbortController().signal,
  });
  const publish = (n: number) =>
    handover.send(n - 1, async (session) => ({
      session,
      ack: await session.publish('demo', { n }, { id: String(n) }),
    }));
  return { handover, events, publish, opens: () => opened };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('SessionHandover (publish across a relay drain, docs/protocol.md §5.4.1)', () => {
  it('default: on the drain notice the unanswered publishes go out again on a new session, in input order, with their ids and payloads; acked ones are not sent again', async () => {
    const [first, second] = [relaySession(), relaySession()];
    const { handover, events, publish } = handoverOf(first, [second]);
    const results = [1, 2, 3, 4, 5].map(publish);
    await tick();
    expect(first.publishes().map(({ id }) => id)).toEqual(['1', '2', '3', '4', '5']);

    first.ack(['1', '2']);
    first.drainNotice();
    // Sent (the first time) while the handover is under way, before 3–5 come back: it still
    // goes after them.
    results.push(publish(6));
    await vi.waitFor(() => expect(second.publishes()).toHaveLength(4));
    expect(second.publishes()).toEqual(
      [3, 4, 5, 6].map((n) => expect.objectContaining({ id: String(n), payload: { n } })),
    );
    second.ack(['3', '4', '5', '6']);

    const acks = await Promise.all(results);
    expect(acks.map(({ ack }) => ack.id)).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(acks.map(({ session }) => session)).toEqual([
      ...[1, 2].map(() => first.session),
      ...[3, 4, 5, 6].map(() => second.session),
    ]);
    expect(new Set(acks.map(({ ack }) => ack.recordId)).size).toBe(6);
    expect(first.publishes()).toHaveLength(5);
    expect(first.session.state).toBe('closed');
    expect(handover.current).toBe(second.session);
    expect(handover.lost).toBeUndefined();
    expect(events).toEqual([
      { type: 'draining', reconnecting: true },
      { type: 'reconnected', resending: 3 },
    ]);
  });

  it('behavior: the new session draining too is left the same way', async () => {
    const [first, second, third] = [relaySession(), relaySession(), relaySession()];
    const { events, publish } = handoverOf(first, [second, third]);
    const one = publish(1);
    await tick();
    first.drainNotice();
    await vi.waitFor(() => expect(second.publishes()).toHaveLength(1));
    second.drainNotice();
    await vi.waitFor(() => expect(third.publishes()).toHaveLength(1));
    third.ack(['1']);
    expect((await one).session).toBe(third.session);
    expect(events.map(({ type }) => type)).toEqual([
      'draining',
      'reconnected',
      'draining',
      'reconnected',
    ]);
  });

  it('error: when no new session opens, the waiting sends reject with HandoverError after `tries` tries, later ones at once, and lost says why', async () => {
    const first = relaySession();
    const busy = new SessionRequestError({
      status: 503,
      code: 'no_relay_available',
      title: 'No relay available',
    });
    const { handover, events, publish, opens } = handoverOf(first, [busy, busy, busy, busy], {
      tries: 3,
    });
    const one = publish(1);
    await tick();
    first.drainNotice();
    await expect(one).rejects.toBeInstanceOf(HandoverError);
    expect(opens()).toBe(3);
    expect(events).toEqual([
      { type: 'draining', reconnecting: true },
      { type: 'retrying', error: busy, waitMs: 0 },
      { type: 'retrying', error: busy, waitMs: 0 },
      { type: 'failed', tries: 3, error: busy },
    ]);
    expect(handover.lost).toMatch(
      /^no session after the relay drained \(could not reconnect: 503 no_relay_available/,
    );
    await expect(publish(2)).rejects.toBeInstanceOf(HandoverError);
    expect(opens()).toBe(3);
  });

  it('error: a refusal asking again cannot change (401) ends the handover at the first try', async () => {
    const first = relaySession();
    const refused = new SessionRequestError({
      status: 401,
      code: 'unauthorized',
      title: 'Unauthorized',
    });
    const { events, publish, opens } = handoverOf(first, [refused, relaySession()]);
    const one = publish(1);
    await tick();
    first.drainNotice();
    await expect(one).rejects.toBeInstanceOf(HandoverError);
    expect(opens()).toBe(1);
    expect(events.at(-1)).toEqual({ type: 'failed', tries: 1, error: refused });
  });

  it('behavior: a session that closes without a drain is not replaced: its unanswered publishes fail (the relay may have kept them) and lost says so', async () => {
    const first = relaySession();
    const { handover, events, publish, opens } = handoverOf(first, [relaySession()]);
    const one = publish(1);
    await tick();
    first.channel.close();
    await expect(one).rejects.toBeInstanceOf(SessionClosedError);
    expect(opens()).toBe(0);
    expect(events).toEqual([]);
    expect(handover.lost).toBe('the session closed (the data channel closed)');
  });

  it('behavior: once every send is done, a drain only leaves the session; no new one is opened', async () => {
    const first = relaySession();
    const { handover, events, opens } = handoverOf(first, [relaySession()]);
    handover.sendsDone();
    first.drainNotice();
    await handover.close();
    expect(first.session.state).toBe('closed');
    expect(opens()).toBe(0);
    expect(events).toEqual([{ type: 'draining', reconnecting: false }]);
  });

  it('behavior: keptNothing: relay_draining nacks always; shutting_down nacks and a closed session only once the relay said it drains; other errors never', () => {
    const session = (draining: boolean) => ({ draining }) as HandoverSession;
    const nack = (
      code: 'relay_draining' | 'shutting_down' | 'rate_limited' | 'payload_too_large',
    ) => new NackError({ code, message: '', id: '1' });
    const closed = new SessionClosedError('Session closed: the data channel closed');
    expect(keptNothing(session(false), nack('relay_draining'))).toBe(true);
    expect(keptNothing(session(true), nack('shutting_down'))).toBe(true);
    expect(keptNothing(session(false), nack('shutting_down'))).toBe(false);
    expect(keptNothing(session(true), closed)).toBe(true);
    expect(keptNothing(session(false), closed)).toBe(false);
    expect(keptNothing(session(true), nack('rate_limited'))).toBe(false);
    expect(keptNothing(session(true), nack('payload_too_large'))).toBe(false);
    // Acked with another content hash: the relay kept something.
    expect(keptNothing(session(true), new IntegrityError('mismatch'))).toBe(false);
  });
});
