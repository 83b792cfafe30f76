import { ConfigError } from '@streamanchor/service-kit';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config';

const required = {
  RPC_URL: 'http://127.0.0.1:8545',
  CHAIN_ID: '31337',
  CONTRACT_ADDRESS: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  // Not a real key: 64 hex digits that only satisfy the format.
  WRITER_PRIVATE_KEY: `0x${'ab'.repeat(32)}`,
};

describe('config', () => {
  it('default: applies the documented defaults', () => {
    expect(loadConfig(required)).toEqual({
      ...required,
      CHAIN_ID: 31337,
      BATCH_MAX_RECORDS: 8192,
      BATCH_MAX_AGE_MS: 100,
      RECORDS_CONCURRENCY: 16,
      TX_CONFIRM_TIMEOUT_MS: 30_000,
      AUDIT_ANCHOR_INTERVAL_MS: 60_000,
      DATA_DIR: '.data',
      LOG_LEVEL: 'info',
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: 'sa',
      OPS_PORT: 9464,
      OPS_HOST: '127.0.0.1',
    });
  });

  it('error: names every missing required variable', () => {
    const error = (() => {
      try {
        loadConfig({});
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    const variables = (error as ConfigError).problems.map((p) => p.variable).sort();
    expect(variables).toEqual(['CHAIN_ID', 'CONTRACT_ADDRESS', 'RPC_URL', 'WRITER_PRIVATE_KEY']);
  });

  it('error: a malformed key is refused without echoing it', () => {
    const badKey = `0x${'cd'.repeat(31)}zz`;
    let message = '';
    try {
      loadConfig({ ...required, WRITER_PRIVATE_KEY: badKey, RPC_URL: 'ws://127.0.0.1:8546' });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/WRITER_PRIVATE_KEY/);
    expect(message).toMatch(/RPC_URL/);
    expect(message).not.toContain('cdcdcd');
  });
});
