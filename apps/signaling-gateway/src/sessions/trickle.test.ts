import { RemoteError } from '@streamanchor/bus';
import { ifMatchSatisfied, type TrickleSessionRequest } from '@streamanchor/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ANSWER_SDP,
  ANSWER_UFRAG,
  expectProblem,
  type FakeRelay,
  OFFER_SDP,
  startFakeRelay,
  startGateway,
  type TestGateway,
} from '../../test/support';

// PATCH /v1/sessions/<id> (trickle ICE, docs/protocol.md §3.1.2). The relay is the stand-in of
// test/support (a real worker on the real control queue); for trickleSession it does what the
// relay does with If-Match (the relay's own logic is tested in apps/rtc-relay/test/trickle.test.ts).

const ETAG = `"${ANSWER_UFRAG}"`;
const CANDIDATE = 'candidate:1467250027 1 udp 2122260223 192.168.1.10 46243 typ host generation 0';
const FRAGMENT = [
  'a=ice-ufrag:Kd8s',
  'a=ice-pwd:9cBnR4vBF4mSgHkYQ0mU7f5q',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'a=mid:0',
  `a=${CANDIDATE}`,
  'a=end-of-candidates',
  '',
].join('\r\n');

let gateway: TestGateway;
let relay: FakeRelay;
let token: string;

/** A relay that refuses an ICE restart and checks If-Match against the answer's ETag. */
async function trickleRelay() {
  return startFakeRelay(gateway, {
    process: async (job) => {
      if (job.name === 'createSession') return { answerSdp: ANSWER_SDP };
      if (job.name === 'deleteSession') return { deleted: true };
      const data = job.data as TrickleSessionRequest;
      if (!ifMatchSatisfied(data.ifMatch, ETAG))
        return { outcome: 'precondition_failed', etag: ETAG };
      if (data.iceUfrag !== undefined && data.iceUfrag !== 'Kd8s')
        throw new RemoteError('ice_restart_unsupported', 'The relay cannot restart ICE');
      return { outcome: 'applied', etag: ETAG };
    },
  });
}

async function open(): Promise<string> {
  const response = await gateway.app.fastify.inject({
    method: 'POST',
    url: '/v1/sessions',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
    payload: OFFER_SDP,
  });
  expect(response.statusCode, response.body).toBe(201);
  expect(response.headers['accept-patch']).toBe('application/trickle-ice-sdpfrag');
  return response.headers.location as string;
}

function patch(url: string, body: string, headers: Record<string, string | undefined> = {}) {
  const all: Record<string, string> = {};
  for (const [name, value] of Object.entries({
    'content-type': 'application/trickle-ice-sdpfrag',
    authorization: `Bearer ${token}`,
    'if-match': ETAG,
    ...headers,
  }))
    if (value !== undefined) all[name] = value;
  return gateway.app.fastify.inject({ method: 'PATCH', url, headers: all, payload: body });
}

describe('PATCH /v1/sessions/<id> (trickle ICE)', () => {
  beforeEach(async () => {
    gateway = await startGateway();
    token = await gateway.token();
    relay = await trickleRelay();
  });
  afterEach(async () => {
    await relay.close();
    await gateway.close();
  });

  it('default: 204 with the ETag; the relay holding the session gets the candidates', async () => {
    const url = await open();
    const response = await patch(url, FRAGMENT);
    expect(response.statusCode, response.body).toBe(204);
    expect(response.headers.etag).toBe(ETAG);
    expect(response.headers['cache-control']).toBe('no-store');
    const job = relay.jobs.find((j) => j.name === 'trickleSession');
    expect(job?.data).toMatchObject({
      sessionId: url.split('/').pop(),
      ifMatch: ETAG,
      iceUfrag: 'Kd8s',
      icePwd: '9cBnR4vBF4mSgHkYQ0mU7f5q',
      candidates: [{ candidate: CANDIDATE, mid: '0' }],
      endOfCandidates: true,
    });
  });

  it('behavior: If-Match "*" and a fragment with only a=end-of-candidates are taken', async () => {
    const url = await open();
    const response = await patch(url, 'a=end-of-candidates\r\n', { 'if-match': '*' });
    expect(response.statusCode, response.body).toBe(204);
  });

  it('error: 412 precondition_failed when If-Match is not the ETag, with the current ETag', async () => {
    const url = await open();
    const response = await patch(url, FRAGMENT, { 'if-match': '"other"' });
    expectProblem(response, 'precondition_failed');
    expect(response.headers.etag).toBe(ETAG);
    // A weak tag never matches (If-Match compares strongly).
    expectProblem(await patch(url, FRAGMENT, { 'if-match': `W/${ETAG}` }), 'precondition_failed');
  });

  it('error: 428 precondition_required without If-Match (the body is not read)', async () => {
    const url = await open();
    expectProblem(await patch(url, FRAGMENT, { 'if-match': undefined }), 'precondition_required');
    expect(relay.jobs.some((j) => j.name === 'trickleSession')).toBe(false);
  });

  it('error: 415 unsupported_media_type for another Content-Type, with Accept-Patch', async () => {
    const url = await open();
    const response = await patch(url, FRAGMENT, { 'content-type': 'application/sdp' });
    expectProblem(response, 'unsupported_media_type');
    expect(response.headers['accept-patch']).toBe('application/trickle-ice-sdpfrag');
  });

  it('error: 404 session_not_found for an unknown session and for another subject’s', async () => {
    expectProblem(
      await patch('/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA', FRAGMENT),
      'session_not_found',
    );
    const url = await open();
    token = await gateway.token({ subject: 'mallory' });
    expectProblem(await patch(url, FRAGMENT), 'session_not_found');
    expect(relay.jobs.some((j) => j.name === 'trickleSession')).toBe(false);
  });

  it('error: 401 unauthorized without a token, before anything else', async () => {
    const url = await open();
    const response = await patch(url, 'nonsense', {
      authorization: undefined,
      'content-type': 'text/plain',
    });
    expectProblem(response, 'unauthorized');
  });

  it('error: 400 invalid_sdpfrag for a malformed fragment, 400 bad_request for a bad id', async () => {
    const url = await open();
    const bad = await patch(url, 'a=candidate:1 1 udp 99 not_an_address 1 typ host\r\n');
    const body = expectProblem(bad, 'invalid_sdpfrag');
    expect(body.detail).toMatch(/address/);
    expectProblem(await patch(url, 'hello\r\n'), 'invalid_sdpfrag');
    expectProblem(await patch(url, ''), 'invalid_sdpfrag');
    expectProblem(await patch('/v1/sessions/short', FRAGMENT), 'bad_request');
    expect(relay.jobs.some((j) => j.name === 'trickleSession')).toBe(false);
  });

  it('error: 422 ice_restart_unsupported for a fragment with new ICE credentials', async () => {
    const url = await open();
    const restart = FRAGMENT.replace('ice-ufrag:Kd8s', 'ice-ufrag:New1').replace(
      'ice-pwd:9cBnR4vBF4mSgHkYQ0mU7f5q',
      'ice-pwd:AAAAAAAAAAAAAAAAAAAAAAAA',
    );
    const body = expectProblem(
      await patch(url, restart, { 'if-match': '*' }),
      'ice_restart_unsupported',
    );
    expect(body.detail).toMatch(/restart/);
  });
});
