import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The coturn config deployments use (and the netns e2e runs, apps/web/e2e/netns.e2e.test.ts).
const CONFIG_PATH = join(import.meta.dirname, '../../../../infra/coturn/turnserver.conf');
const lines = readFileSync(CONFIG_PATH, 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));
const values = (option: string) =>
  lines.filter((line) => line.split('=')[0] === option).map((line) => line.split('=')[1]);

describe('infra/coturn/turnserver.conf (the deployment config)', () => {
  it('default: TURN REST auth, realm, fingerprint, no CLI, TLS 1.2+, listeners and relay range', () => {
    for (const flag of [
      'use-auth-secret',
      'fingerprint',
      'no-cli',
      'no-tlsv1',
      'no-tlsv1_1',
      'no-multicast-peers',
      'no-tcp-relay',
    ]) {
      expect(lines, flag).toContain(flag);
    }
    expect(values('realm')).toHaveLength(1);
    expect(values('listening-port')).toEqual(['3478']);
    expect(values('tls-listening-port')).toEqual(['5349']);
    expect(values('cert')).toHaveLength(1);
    expect(values('pkey')).toHaveLength(1);
    const [min, max] = [Number(values('min-port')[0]), Number(values('max-port')[0])];
    expect(min).toBeGreaterThanOrEqual(49152);
    expect(max).toBeGreaterThan(min);
    for (const option of ['stale-nonce', 'total-quota', 'user-quota', 'max-bps']) {
      expect(Number(values(option)[0]), option).toBeGreaterThan(0);
    }
  });

  it('error: no secret, no open relaying: no static-auth-secret, no-auth, allow-loopback-peers or allowed-peer-ip in the file', () => {
    for (const option of [
      'static-auth-secret',
      'no-auth',
      'allow-loopback-peers',
      'allowed-peer-ip',
      'lt-cred-mech',
      'cli-password',
    ]) {
      expect(
        lines.filter((line) => line.split('=')[0] === option),
        option,
      ).toEqual([]);
    }
  });

  it('behavior: loopback, link-local, private, CGNAT and unique-local peers are denied', () => {
    const denied = values('denied-peer-ip');
    for (const range of [
      '0.0.0.0-0.255.255.255',
      '10.0.0.0-10.255.255.255',
      '172.16.0.0-172.31.255.255',
      '192.168.0.0-192.168.255.255',
      '100.64.0.0-100.127.255.255',
      '127.0.0.0-127.255.255.255',
      '169.254.0.0-169.254.255.255',
      '::-::1',
      'fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      'fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    ]) {
      expect(denied, range).toContain(range);
    }
  });
});
