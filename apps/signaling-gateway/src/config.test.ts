import { ConfigError } from '@streamanchor/service-kit';
import { describe, expect, it } from 'vitest';
import { testEnv } from '../test/support';
import { loadConfig } from './config';

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('default: defaults apply to everything optional', () => {
    const config = loadConfig(
      testEnv({ HOST: undefined, PORT: undefined, LOG_LEVEL: undefined, REDIS_URL: undefined }),
    );
    expect(config).toMatchObject({
      HOST: '127.0.0.1',
      PORT: 8080,
      SIGNALING_TIMEOUT_MS: 5000,
      LOOKUP_TIMEOUT_MS: 3000,
      RELAY_STALE_AFTER_MS: 6000,
      SESSION_TTL_MS: 30000,
      HISTORY_RATE_PER_IP: 2400,
      HISTORY_RATE_PER_SUBJECT: 1200,
      HISTORY_RATE_WINDOW_MS: 60000,
      TRUST_PROXY: 0,
      CORS_ORIGINS: [],
      LOG_LEVEL: 'info',
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: 'sa',
      CHAIN_ID: 31337,
      DEPLOYMENT_BLOCK: 7,
    });
    expect(config.WEB_DIST_DIR).toBeUndefined();
  });

  it('behavior: values are converted (PORT 0, TRUST_PROXY hops, origin lists)', () => {
    const config = loadConfig(
      testEnv({
        PORT: '0',
        TRUST_PROXY: '1',
        CORS_ORIGINS: 'https://a.example, http://localhost:5173,',
        WEB_DIST_DIR: '.',
      }),
    );
    expect(config.PORT).toBe(0);
    expect(config.TRUST_PROXY).toBe(1);
    expect(config.CORS_ORIGINS).toEqual(['https://a.example', 'http://localhost:5173']);
    expect(config.WEB_DIST_DIR).toBe('.');
  });

  it('error: JWT_SECRET missing or shorter than 32 characters is named', () => {
    for (const secret of [undefined, '', 'short-secret', 'x'.repeat(31)]) {
      const error = configError(testEnv({ JWT_SECRET: secret }));
      expect(error.problems.map((p) => p.variable)).toEqual(['JWT_SECRET']);
      expect(error.message).toContain('JWT_SECRET');
    }
  });

  it('error: every bad variable is named at once', () => {
    const error = configError({
      JWT_SECRET: 'x'.repeat(40),
      PORT: 'eighty',
      CONTRACT_ADDRESS: '0x123',
      PUBLIC_RPC_URL: 'ws://chain',
      TRUST_PROXY: 'perhaps',
    });
    expect(error.problems.map((p) => p.variable).sort()).toEqual(
      [
        'CHAIN_ID',
        'CONTRACT_ADDRESS',
        'DEPLOYMENT_BLOCK',
        'PORT',
        'PUBLIC_RPC_URL',
        'TRUST_PROXY',
      ].sort(),
    );
  });

  it('error: bad CORS origins and a missing WEB_DIST_DIR are named', () => {
    const error = configError(
      testEnv({
        CORS_ORIGINS: 'https://ok.example,https://bad.example/path',
        WEB_DIST_DIR: '/no/such/dir',
      }),
    );
    expect(error.problems.map((p) => p.variable).sort()).toEqual(['CORS_ORIGINS', 'WEB_DIST_DIR']);
  });

  it('behavior: ICE settings are parsed (lists, provider, TTL)', () => {
    const none = loadConfig(testEnv());
    expect(none).toMatchObject({
      ICE_PROVIDER: 'none',
      ICE_STUN_URLS: [],
      TURN_URLS: [],
      TURN_TTL_SECONDS: 86400,
      CLOUDFLARE_TURN_API_URL: 'https://rtc.live.cloudflare.com/v1',
      ICE_PROVIDER_TIMEOUT_MS: 2000,
    });
    const coturn = loadConfig(
      testEnv({
        ICE_PROVIDER: 'coturn',
        ICE_STUN_URLS: 'stun:a.example:3478, stuns:b.example',
        TURN_URLS: 'turn:t.example:3478?transport=udp,turns:t.example:5349',
        TURN_SECRET: 's'.repeat(16),
        TURN_TTL_SECONDS: '600',
      }),
    );
    expect(coturn.ICE_STUN_URLS).toEqual(['stun:a.example:3478', 'stuns:b.example']);
    expect(coturn.TURN_URLS).toEqual(['turn:t.example:3478?transport=udp', 'turns:t.example:5349']);
    expect(coturn.TURN_TTL_SECONDS).toBe(600);
  });

  it('error: ICE_PROVIDER names what it needs, and URIs of the wrong kind are named', () => {
    const variables = (env: Record<string, string>) =>
      configError(testEnv(env))
        .problems.map((p) => p.variable)
        .sort();
    expect(variables({ ICE_PROVIDER: 'coturn' })).toEqual(['TURN_SECRET', 'TURN_URLS']);
    expect(variables({ ICE_PROVIDER: 'cloudflare' })).toEqual([
      'CLOUDFLARE_TURN_API_TOKEN',
      'CLOUDFLARE_TURN_KEY_ID',
    ]);
    expect(variables({ ICE_PROVIDER: 'static' })).toEqual(['ICE_STUN_URLS']);
    expect(variables({ ICE_PROVIDER: 'twilio' })).toEqual(['ICE_PROVIDER']);
    expect(variables({ TURN_SECRET: 'short', TURN_TTL_SECONDS: '200000' })).toEqual([
      'TURN_SECRET',
      'TURN_TTL_SECONDS',
    ]);
    expect(
      variables({ ICE_STUN_URLS: 'stun:ok.example,turn:t.example', TURN_URLS: 'turn:bad host' }),
    ).toEqual(['ICE_STUN_URLS', 'TURN_URLS']);
    const turnInStatic = configError(testEnv({ ICE_STUN_URLS: 'turn:t.example' }));
    expect(turnInStatic.message).toMatch(/TURN credentials are per session/);
  });
});
