import { ConfigError } from '@streamanchor/service-kit';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config';

const required = {
  RPC_URL: 'http://127.0.0.1:8545',
  CHAIN_ID: '31337',
  CONTRACT_ADDRESS: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  DEPLOYMENT_BLOCK: '1',
};

describe('config', () => {
  it('default', () => {
    const config = loadConfig(required);
    expect(config).toMatchObject({
      rpcUrl: 'http://127.0.0.1:8545',
      chainId: 31337,
      contractAddress: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
      contract: '0x5fbdb2315678afecb367f032d93f642f64180aa3',
      deploymentBlock: 1,
      pollIntervalMs: 500,
      confirmations: 0,
      maxLogRange: 2000,
      receiptsPerJob: 250,
      receiptCacheRecords: 50_000,
      leaseMs: 5000,
      databaseUrl: undefined,
      dataDir: '.data',
      logLevel: 'info',
      redisUrl: 'redis://127.0.0.1:6379',
      redisPrefix: 'sa',
    });
  });

  it('behavior: reads every variable', () => {
    const config = loadConfig({
      ...required,
      POLL_INTERVAL_MS: '100',
      CONFIRMATIONS: '12',
      MAX_LOG_RANGE: '50',
      RECEIPTS_PER_JOB: '10',
      RECEIPT_CACHE_RECORDS: '0',
      INDEXER_LEASE_MS: '1500',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/sa',
      DATA_DIR: '/tmp/x',
      LOG_LEVEL: 'debug',
      REDIS_URL: 'redis://10.0.0.1:6379',
      REDIS_PREFIX: 'prod',
    });
    expect(config).toMatchObject({
      pollIntervalMs: 100,
      confirmations: 12,
      maxLogRange: 50,
      receiptsPerJob: 10,
      receiptCacheRecords: 0,
      leaseMs: 1500,
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/sa',
      dataDir: '/tmp/x',
      logLevel: 'debug',
      redisUrl: 'redis://10.0.0.1:6379',
      redisPrefix: 'prod',
    });
  });

  it('error: names each missing or bad variable', () => {
    let caught: unknown;
    try {
      loadConfig({ CHAIN_ID: 'abc', CONTRACT_ADDRESS: '0x1234', MAX_LOG_RANGE: '0' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const variables = (caught as ConfigError).problems.map((p) => p.variable).sort();
    expect(variables).toEqual([
      'CHAIN_ID',
      'CONTRACT_ADDRESS',
      'DEPLOYMENT_BLOCK',
      'MAX_LOG_RANGE',
      'RPC_URL',
    ]);
  });
});
