/**
 * Trickle ICE on the relay (docs/protocol.md §3.1.2): the gateway's `trickleSession` requests
 * through the real control queue, the WebRTC client in a child process (as in relay.test.ts),
 * real Redis. The client's offer goes out with NO candidates; they follow by trickle.
 */
import { randomBytes } from 'node:crypto';
import { jobIds, RemoteError, requestReply } from '@streamanchor/bus';
import type { HelloMessage, TrickleSessionRequest } from '@streamanchor/protocol';
import { afterEach, describe, expect, test } from 'vitest';
import { ClientProcess } from './support/client';
import { startTestRelay, type TestRelay } from './support/relay';

let relay: TestRelay | undefined;
let client: ClientProcess | undefined;

afterEach(async () => {
  await client?.stop();
  client = undefined;
  await relay?.close();
  relay = undefined;
});

const isCandidateLine = (line: string) =>
  line.startsWith('a=candidate:') || line.startsWith('a=end-of-candidates');
const withoutCandidates = (sdp: string) =>
  sdp
    .split(/(?<=\n)/)
    .filter((line) => !isCandidateLine(line))
    .join('');
const candidatesOf = (sdp: string) =>
  sdp
    .split(/\r?\n/)
    .filter((line) => line.startsWith('a=candidate:'))
    .map((line) => line.slice('a='.length));
const ufragOf = (sdp: string) => /^a=ice-ufrag:(\S+)/m.exec(sdp)?.[1];

function trickle(
  r: TestRelay,
  data: Partial<TrickleSessionRequest> & { sessionId: string },
): Promise<{ outcome: string; etag: string }> {
  return requestReply(
    r.control,
    r.controlEvents,
    'trickleSession',
    {
      ifMatch: '*',
      candidates: [],
      endOfCandidates: false,
      deadline: Date.now() + 5000,
      ...data,
    },
    {
      jobId: jobIds.trickleSession(data.sessionId, randomBytes(4).toString('hex')),
      timeoutMs: 5000,
    },
  );
}

/** Offer without candidates → answer (optionally stripped of the relay's) → trickle → hello. */
async function openByTrickle(
  env: Record<string, string>,
  { hideRelayCandidates }: { hideRelayCandidates: boolean },
) {
  const [r, c] = await Promise.all([startTestRelay(env), ClientProcess.spawn()]);
  relay = r;
  client = c;
  const fullOffer = await c.offer({ protocol: 'streamanchor.v2' });
  const candidates = candidatesOf(fullOffer);
  expect(candidates.length).toBeGreaterThan(0);
  const { sessionId, answerSdp } = await r.createSession({
    offerSdp: withoutCandidates(fullOffer),
  });
  c.command({ cmd: 'answer', sdp: hideRelayCandidates ? withoutCandidates(answerSdp) : answerSdp });
  const etag = `"${ufragOf(answerSdp)}"`;
  const taken = await trickle(r, {
    sessionId,
    ifMatch: etag,
    iceUfrag: ufragOf(fullOffer),
    icePwd: /^a=ice-pwd:(\S+)/m.exec(fullOffer)?.[1],
    candidates: candidates.map((candidate) => ({ candidate, mid: '0' })),
  });
  expect(taken).toEqual({ outcome: 'applied', etag });
  expect(await trickle(r, { sessionId, ifMatch: etag, endOfCandidates: true })).toEqual({
    outcome: 'applied',
    etag,
  });
  await c.waitFor((e) => e.event === 'open');
  const hello = (await c.message((m) => m.type === 'hello')) as HelloMessage;
  return { relay: r, client: c, sessionId, etag, hello, candidates };
}

describe('trickle ICE (trickleSession)', () => {
  test('default: an offer with no candidates, its candidates trickled after the answer: the session opens', async () => {
    const { hello, sessionId } = await openByTrickle({}, { hideRelayCandidates: false });
    expect(hello.sessionId).toBe(sessionId);
  });

  test('behavior: with ICE_USE_OFFER_CANDIDATES the relay checks the trickled candidates (a client that knows none of the relay’s still connects)', async () => {
    const { hello, sessionId } = await openByTrickle(
      { ICE_USE_OFFER_CANDIDATES: 'true' },
      { hideRelayCandidates: true },
    );
    expect(hello.sessionId).toBe(sessionId);
  });

  test('error: If-Match, ICE restart, mid, end-of-candidates and unknown sessions are refused with their codes', async () => {
    const {
      relay: r,
      sessionId,
      etag,
      candidates,
    } = await openByTrickle({}, { hideRelayCandidates: false });
    // A stale ETag: not applied, and the current one is told.
    expect(await trickle(r, { sessionId, ifMatch: '"stale"' })).toEqual({
      outcome: 'precondition_failed',
      etag,
    });
    const refusedWith = async (data: Partial<TrickleSessionRequest>) => {
      const error = await trickle(r, { sessionId, ...data }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteError);
      return error as RemoteError;
    };
    expect(
      (await refusedWith({ iceUfrag: 'NewUfrag', icePwd: 'NewPasswordNewPassword1' })).code,
    ).toBe('ice_restart_unsupported');
    const other = 'candidate:9 1 udp 2122260223 127.0.0.1 40000 typ host';
    expect((await refusedWith({ candidates: [{ candidate: other, mid: '7' }] })).code).toBe(
      'invalid_sdpfrag',
    );
    // The client ended its candidates: a new one is refused, a repeated one is no news.
    const late = await refusedWith({ candidates: [{ candidate: other }] });
    expect(late.code).toBe('invalid_sdpfrag');
    expect(late.detail).toMatch(/end-of-candidates/);
    expect(
      await trickle(r, { sessionId, candidates: [{ candidate: candidates[0]!, mid: '0' }] }),
    ).toEqual({ outcome: 'applied', etag });
    const unknown = await trickle(r, { sessionId: 'AAAAAAAAAAAAAAAAAAAAAA' }).catch(
      (e: unknown) => e,
    );
    expect((unknown as RemoteError).code).toBe('session_not_found');
  });
});
