/**
 * ICE ports and addresses: every session of a relay on its one UDP port, announced at the
 * public address when one is configured. The relay runs in this process, clients in child
 * processes (test/support).
 */
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
