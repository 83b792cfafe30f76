import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@streamanchor/service-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { loadStackConfig } from './config';
import { resolveJwtSecret } from './index';
import { REPO_ROOT } from './paths';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('stack config', () => {
  it('default: sensible local defaults, DATA_DIR under the repository root', () => {
    const config = loadStackConfig({});
    expect(config.PORT).toBe(8080);
    expect(config.ANVIL_PORT).toBe(8545);
    expect(config.ANVIL_BLOCK_TIME).toBe(1);
    expect(config.DATA_DIR).toBe(join(REPO_ROOT, '.data'));
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.CPU_PROFILE_DIR).toBeUndefined();
  });

  it('behavior: CPU_PROFILE_DIR is resolved against the repository root', () => {
    expect(loadStackConfig({ CPU_PROFILE_DIR: '.data/profiles' }).CPU_PROFILE_DIR).toBe(
      join(REPO_ROOT, '.data/profiles'),
    );
    expect(loadStackConfig({ CPU_PROFILE_DIR: '/tmp/p' }).CPU_PROFILE_DIR).toBe('/tmp/p');
  });

  it('error: a bad value fails fast naming the variable', () => {
    expect(() => loadStackConfig({ ANVIL_PORT: 'eighty' })).toThrow(ConfigError);
    expect(() => loadStackConfig({ ANVIL_PORT: 'eighty' })).toThrow(/ANVIL_PORT/);
    expect(() => loadStackConfig({ JWT_SECRET: 'short' })).toThrow(/JWT_SECRET/);
    expect(() => loadStackConfig({ REDIS_URL: 'localhost:6379' })).toThrow(/REDIS_URL/);
  });

  it('behavior: the JWT secret is generated once into DATA_DIR/jwt-secret with mode 600', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sa-stack-config-'));
    dirs.push(dir);
    const config = loadStackConfig({ DATA_DIR: join(dir, 'data') });
    const first = resolveJwtSecret(config);
    const file = join(dir, 'data', 'jwt-secret');
    expect(existsSync(file)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(first.secret.length).toBeGreaterThanOrEqual(32);
    expect(resolveJwtSecret(config).secret).toBe(first.secret);
    expect(resolveJwtSecret({ ...config, JWT_SECRET: 'y'.repeat(40) }).secret).toBe('y'.repeat(40));
  });
});
