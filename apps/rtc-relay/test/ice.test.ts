/**
 * ICE ports and addresses: every session of a relay on its one UDP port, announced at the
 * public address when one is configured. The relay runs in this process, clients in child
 * processes (test/support).
 */
import { randomBytes } from 'node:crypto';
import { sendConnectivityCheck } from '@streamanchor/testing';
import { afterEach, describe, expect, test } from 'vitest';
import { ClientProcess } from './support/client';
import { freeUdpPort, startTestRelay, type TestRelay } from './support/relay';

let relay: TestRelay | undefined;
let clients: ClientProcess[] = [];

afterEach(async () => {
  await Promise.all(clients.map((client) => client.stop()));
  clients = [];
  await relay?.close();
  relay = undefined;
});

const candidates = (sdp: string) =>
  sdp
    .split(/\r?\n/)
    .filter((line) => line.startsWith('a=candidate:'))
    .map((line) => {
      const [, , , , address, port, , type] = line.split(' ');
      return { address, port: Number(port), type };
    });

describe('ICE', () => {
  test('behavior: two sessions share the one ICE_UDP_PORT, each answer also names ICE_PUBLIC_ADDRESS on it, and both open', async () => {
    const port = await freeUdpPort();
    [relay, ...clients] = await Promise.all([
      startTestRelay({ ICE_UDP_PORT: String(port), ICE_PUBLIC_ADDRESS: '198.51.100.23' }),
      ClientProcess.spawn(),
      ClientProcess.spawn(),
    ]);
    const sessions = await Promise.all(clients.map((client) => relay!.connect(client)));
    for (const { answerSdp, hello } of sessions) {
      expect(candidates(answerSdp)).toEqual([
        { address: '127.0.0.1', port, type: 'host' },
        { address: '198.51.100.23', port, type: 'host' },
      ]);
      expect(hello.type).toBe('hello');
    }
    expect(sessions[0]!.sessionId).not.toBe(sessions[1]!.sessionId);
    expect(relay.app.stats().sessions).toBe(2);
  });

  test('behavior: ICE_UDP_PORT=0 gives each session a port of its own', async () => {
    [relay, ...clients] = await Promise.all([
      startTestRelay({ ICE_UDP_PORT: '0' }),
      ClientProcess.spawn(),
      ClientProcess.spawn(),
    ]);
    const sessions = await Promise.all(clients.map((client) => relay!.connect(client)));
    const ports = sessions.map(({ answerSdp }) => candidates(answerSdp)[0]!.port);
    expect(ports[0]).toBeGreaterThan(0);
    expect(ports[0]).not.toBe(ports[1]);
  });
});

/** An offer the relay accepts, with ICE credentials the test knows (it never reaches DTLS). */
function handmadeOffer(ufrag: string, password: string): string {
  const fingerprint = Array.from(randomBytes(32), (byte) => byte.toString(16).padStart(2, '0'))
    .join(':')
    .toUpperCase();
  return [
    'v=0',
    'o=- 1 1 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0',
    'a=mid:0',
    `a=ice-ufrag:${ufrag}`,
    `a=ice-pwd:${password}`,
    `a=fingerprint:sha-256 ${fingerprint}`,
    'a=setup:actpass',
    'a=sctp-port:5000',
    'a=max-message-size:262144',
    '',
  ].join('\r\n');
}

const sdpAttribute = (sdp: string, name: string) =>
  new RegExp(`^a=${name}:(\\S+)`, 'm').exec(sdp)?.[1] ?? '';

describe('ICE connectivity checks (libjuice#355, patched at install: see src/native)', () => {
  // Chromium sends its checks over a TURN/TCP (or TLS) allocation with a tiebreaker of 0.
  // Unpatched, libjuice takes a zero tiebreaker for a missing attribute and answers 400, and
  // browsers that can reach us only over TURN/TCP never connect.
  const cases = [
    { name: 'ICE-CONTROLLING with tiebreaker 0', controlling: 0n },
    {
      name: 'ICE-CONTROLLING with tiebreaker 0 and USE-CANDIDATE',
      controlling: 0n,
      useCandidate: true,
    },
    { name: 'ICE-CONTROLLING with a random tiebreaker', controlling: 0x1234_5678_9abc_def0n },
  ];
  /**
   * A relay on its own port with one session opened from a hand-made offer: where to send
   * checks, and the username and password a check of that session carries.
   */
  async function sessionToCheck(): Promise<{ port: number; username: string; password: string }> {
    const port = await freeUdpPort();
    relay = await startTestRelay({ ICE_UDP_PORT: String(port) });
    const ufrag = 'tst1';
    const { answerSdp } = await relay.createSession({
      offerSdp: handmadeOffer(ufrag, randomBytes(18).toString('base64')),
    });
    return {
      port,
      username: `${sdpAttribute(answerSdp, 'ice-ufrag')}:${ufrag}`,
      password: sdpAttribute(answerSdp, 'ice-pwd'),
    };
  }

  test.each(cases)(
    'behavior: a check with $name is answered with Binding success',
    async (check) => {
      const session = await sessionToCheck();
      const answer = await sendConnectivityCheck({ host: '127.0.0.1', ...session, ...check });
      expect(answer).toEqual({ kind: 'success' });
    },
  );

  test('error: a check signed with the wrong password is dropped unanswered', async () => {
    const session = await sessionToCheck();
    const answer = await sendConnectivityCheck({
      host: '127.0.0.1',
      ...session,
      password: 'not-the-relays-ice-password',
      controlling: 0n,
      timeoutMs: 500,
    });
    expect(answer).toEqual({ kind: 'timeout' });
  });
});
