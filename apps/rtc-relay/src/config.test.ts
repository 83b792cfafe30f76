import { createHmac } from 'node:crypto';
import { LIMITS } from '@streamanchor/protocol';
import { ConfigError } from '@streamanchor/service-kit';
import { describe, expect, test } from 'vitest';
import { DEFAULT_ICE_UDP_PORT, loadConfig } from './config';
import { rtcConfigFor } from './sessions';

describe('loadConfig', () => {
  test('default: every variable has a default', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      logLevel: 'info',
      redisUrl: 'redis://127.0.0.1:6379',
      redisPrefix: 'sa',
      ice: { udpPort: 10_000, bindAddress: '127.0.0.1', publicAddress: undefined, servers: [] },
      maxMessageBytes: LIMITS.maxMessageBytes,
      maxPayloadBytes: LIMITS.maxPayloadBytes,
      recordFlushMs: 0,
      recordFlushMax: 500,
      heartbeatMs: 2000,
      sessionTtlMs: 30_000,
      maxSessions: 1000,
      maxPayloadDepth: LIMITS.maxDepth,
      maxPayloadMembers: LIMITS.maxMembers,
      maxPayloadTotalMembers: LIMITS.maxTotalMembers,
      publishQuota: {
        perSession: { ratePerSecond: 500, burst: 1000 },
        perSubject: { ratePerSecond: 1000, burst: 2000 },
        closeAfterRefusals: 200,
        closeAfterRefusedBytes: 1_048_576,
        suspendAbusiveSubjectMs: 30_000,
      },
      recordBufferMax: 20_000,
      recordBufferMaxPerSession: 2000,
      drainTimeoutMs: 20_000,
      closeGraceMs: 5000,
    });
    expect(config.relayId).toMatch(/^relay-[A-Za-z0-9_.-]+-[0-9a-f]{4}$/);
    // Every session muxed on the one default port.
    expect(DEFAULT_ICE_UDP_PORT).toBe(10_000);
    expect(rtcConfigFor(config)).toEqual({
      iceServers: [],
      bindAddress: '127.0.0.1',
      maxMessageSize: LIMITS.maxMessageBytes + 1,
      enableIceUdpMux: true,
      portRangeBegin: 10_000,
      portRangeEnd: 10_000,
    });
  });

  test('behavior: ICE_UDP_PORT=0 gives each session an ephemeral port of its own (no mux)', () => {
    const config = loadConfig({ ICE_UDP_PORT: '0' });
    expect(config.ice.udpPort).toBe(0);
    expect(rtcConfigFor(config)).toEqual({
      iceServers: [],
      bindAddress: '127.0.0.1',
      maxMessageSize: LIMITS.maxMessageBytes + 1,
    });
  });

  test.each([['203.0.113.7'], ['2001:db8::7'], ['relay-1.example.net'], ['localhost']])(
    'behavior: ICE_PUBLIC_ADDRESS takes an IP address or a hostname (%s)',
    (address) => {
      expect(loadConfig({ ICE_PUBLIC_ADDRESS: address }).ice.publicAddress).toBe(address);
    },
  );

  test.each([
    ['203.0.113.7:40000'],
    ['http://relay.example.net'],
    ['relay .example.net'],
    ['-relay.example.net'],
  ])('error: ICE_PUBLIC_ADDRESS %j (a port, a URL, not a name) is refused', (address) => {
    expect(() => loadConfig({ ICE_PUBLIC_ADDRESS: address })).toThrow(/ICE_PUBLIC_ADDRESS/);
  });

  test('behavior: DRAIN_TIMEOUT_MS sets the drain; 0 is allowed, negative is not', () => {
    expect(loadConfig({ DRAIN_TIMEOUT_MS: '1500' }).drainTimeoutMs).toBe(1500);
    expect(loadConfig({ DRAIN_TIMEOUT_MS: '0' }).drainTimeoutMs).toBe(0);
    expect(() => loadConfig({ DRAIN_TIMEOUT_MS: '-1' })).toThrow(/DRAIN_TIMEOUT_MS/);
  });

  test('behavior: ICE_UDP_PORT muxes every session on that one port', () => {
    const config = loadConfig({
      ICE_UDP_PORT: '3478',
      ICE_BIND_ADDRESS: '0.0.0.0',
      ICE_SERVERS: 'stun:stun.example.org:3478, stun:stun2.example.org:3478',
      RELAY_ID: 'relay-a',
    });
    expect(config.relayId).toBe('relay-a');
    expect(rtcConfigFor(config)).toMatchObject({
      enableIceUdpMux: true,
      portRangeBegin: 3478,
      portRangeEnd: 3478,
      bindAddress: '0.0.0.0',
      iceServers: ['stun:stun.example.org:3478', 'stun:stun2.example.org:3478'],
    });
  });

  test('behavior: a turn:host:port in ICE_SERVERS gets a TURN REST credential from ICE_TURN_SECRET, minted for each session', () => {
    const config = loadConfig({
      RELAY_ID: 'relay-a',
      ICE_UDP_PORT: '0',
      ICE_SERVERS: 'stun:stun.example.org:3478,turn:10.0.0.6:3478,turn:u:p@turn.example.org:3478',
      ICE_TURN_SECRET: 's3cr3t-0123456789',
      ICE_TURN_TTL_SECONDS: '600',
    });
    const nowMs = 1_796_543_000_000;
    const username = `${1_796_543_000 + 600}:relay-a`;
    expect(rtcConfigFor(config, nowMs).iceServers).toEqual([
      'stun:stun.example.org:3478',
      {
        hostname: '10.0.0.6',
        port: 3478,
        username,
        password: createHmac('sha1', 's3cr3t-0123456789').update(username).digest('base64'),
        relayType: 'TurnUdp',
      },
      'turn:u:p@turn.example.org:3478',
    ]);
    // A later session gets a later expiry.
    expect(rtcConfigFor(config, nowMs + 5_000).iceServers[1]).toMatchObject({
      username: `${1_796_543_005 + 600}:relay-a`,
    });
  });

  test('error: a turn: server without credentials needs ICE_TURN_SECRET; turns: and transport=tcp are refused (TURN over UDP only)', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (error) {
        return (error as ConfigError).problems;
      }
      return [];
    };
    expect(
      problems({
        ICE_SERVERS: 'turn:turn.example.org',
        ICE_TURN_SECRET: 's3cr3t-0123456789',
        ICE_UDP_PORT: '0',
      }),
    ).toEqual([
      {
        variable: 'ICE_SERVERS',
        message:
          '"turn:turn.example.org": ICE_TURN_SECRET mints credentials for turn:host:port only',
      },
    ]);
    expect(problems({ ICE_SERVERS: 'turn:turn.example.org:3478', ICE_UDP_PORT: '0' })).toEqual([
      {
        variable: 'ICE_SERVERS',
        message: `"turn:turn.example.org:3478" has no user:pass@: set ICE_TURN_SECRET (coturn's static-auth-secret) or give the credentials`,
      },
    ]);
    expect(
      problems({
        ICE_SERVERS: 'turns:turn.example.org:5349,turn:u:p@turn.example.org:3478?transport=tcp',
        ICE_TURN_SECRET: 's3cr3t-0123456789',
        ICE_UDP_PORT: '0',
      }).map((p) => p.message),
    ).toEqual([
      `"turns:turn.example.org:5349": the relay's ICE stack speaks TURN over UDP only (turn:host:port)`,
      `"turn:u:p@turn.example.org:3478?transport=tcp": the relay's ICE stack speaks TURN over UDP only (turn:host:port)`,
    ]);
  });

  test('error: a turn: server with a muxed ICE_UDP_PORT is refused (libjuice allocates no TURN relay in mux mode)', () => {
    expect(() =>
      loadConfig({ ICE_SERVERS: 'turn:u:p@turn.example.org:3478', ICE_UDP_PORT: '10000' }),
    ).toThrow(
      /ICE_UDP_PORT: a relay with its own TURN server \(turn: in ICE_SERVERS\) needs ICE_UDP_PORT=0/,
    );
    // STUN alone is fine on the muxed port.
    expect(loadConfig({ ICE_SERVERS: 'stun:stun.example.org:3478' }).ice.udpPort).toBe(10_000);
  });

  test('error: bad values are named', () => {
    const error = (() => {
      try {
        loadConfig({ ICE_UDP_PORT: '70000', RELAY_ID: 'has:colon', MAX_SESSIONS: 'many' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.variable).sort()).toEqual([
      'ICE_UDP_PORT',
      'MAX_SESSIONS',
      'RELAY_ID',
    ]);
  });

  test('behavior: the per-session buffer share never exceeds RECORD_BUFFER_MAX', () => {
    expect(
      loadConfig({ RECORD_BUFFER_MAX: '100', RECORD_BUFFER_MAX_PER_SESSION: '500' })
        .recordBufferMaxPerSession,
    ).toBe(100);
  });
});
