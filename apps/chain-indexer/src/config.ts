import { Type } from '@sinclair/typebox';
import { type LogLevel, LogLevelSchema, parseEnv } from '@streamanchor/service-kit';

export const ConfigSchema = Type.Object({
  RPC_URL: Type.String({
    pattern: '^https?://',
    description: 'HTTP(S) JSON-RPC endpoint of the chain (polled; no WebSocket)',
  }),
  CHAIN_ID: Type.Integer({
    minimum: 1,
    description: 'expected chain id; checked against eth_chainId at start',
  }),
  CONTRACT_ADDRESS: Type.String({
    pattern: '^0x[0-9a-fA-F]{40}$',
    description: 'address of the StreamAnchor contract (0x + 40 hex digits)',
  }),
  DEPLOYMENT_BLOCK: Type.Integer({
    minimum: 0,
    description: 'block the contract was deployed in; the backfill starts there',
  }),
  POLL_INTERVAL_MS: Type.Integer({
    minimum: 10,
    default: 500,
    description: 'pause between polls once caught up with the chain head (ms)',
  }),
  CONFIRMATIONS: Type.Integer({
    minimum: 0,
    default: 0,
    description: 'read only blocks at least this many blocks behind the head',
  }),
  FINALITY_DEPTH: Type.Integer({
    minimum: 1,
    default: 12,
    description:
      'confirmations (the anchoring block counted) after which a receipt is final; must exceed the deepest reorg the chain can have',
  }),
  MAX_LOG_RANGE: Type.Integer({
    minimum: 1,
    default: 2000,
    description: 'most blocks per eth_getLogs call (halved adaptively when a call fails)',
  }),
  RECEIPTS_PER_JOB: Type.Integer({
    minimum: 1,
    default: 1000,
    description: 'most receipts in one receiptBatch job (larger groups are split into chunks)',
  }),
  DATABASE_URL: Type.Optional(
    Type.String({
      pattern: '^postgres(ql)?://',
      description: 'postgres:// URL; when unset, PGlite runs in DATA_DIR/pglite',
    }),
  ),
  DATA_DIR: Type.String({ default: '.data', description: 'folder for local data (PGlite)' }),
  LOG_LEVEL: LogLevelSchema,
  REDIS_URL: Type.String({
    pattern: '^rediss?://',
    default: 'redis://127.0.0.1:6379',
    description: 'Redis URL for the BullMQ queues',
  }),
  REDIS_PREFIX: Type.String({
    minLength: 1,
    pattern: '^[^:]+$',
    default: 'sa',
    description: 'prefix of every Redis key (no colon)',
  }),
});

export interface Config {
  rpcUrl: string;
  chainId: number;
  /** As configured (checksummed or lowercase); use `contract` for stored and emitted values. */
  contractAddress: `0x${string}`;
  /** The contract address in lowercase: the form stored in the database and put in receipts. */
  contract: `0x${string}`;
  deploymentBlock: number;
  pollIntervalMs: number;
  confirmations: number;
  finalityDepth: number;
  maxLogRange: number;
  receiptsPerJob: number;
  databaseUrl: string | undefined;
  dataDir: string;
  logLevel: LogLevel;
  redisUrl: string;
  redisPrefix: string;
}

/** Reads the chain-indexer's configuration; throws ConfigError naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = parseEnv('chain-indexer', ConfigSchema, env);
  const address = parsed.CONTRACT_ADDRESS as `0x${string}`;
  return {
    rpcUrl: parsed.RPC_URL,
    chainId: parsed.CHAIN_ID,
    contractAddress: address,
    contract: address.toLowerCase() as `0x${string}`,
    deploymentBlock: parsed.DEPLOYMENT_BLOCK,
    pollIntervalMs: parsed.POLL_INTERVAL_MS,
    confirmations: parsed.CONFIRMATIONS,
    finalityDepth: parsed.FINALITY_DEPTH,
    maxLogRange: parsed.MAX_LOG_RANGE,
    receiptsPerJob: parsed.RECEIPTS_PER_JOB,
    databaseUrl: parsed.DATABASE_URL,
    dataDir: parsed.DATA_DIR,
    logLevel: parsed.LOG_LEVEL as LogLevel,
    redisUrl: parsed.REDIS_URL,
    redisPrefix: parsed.REDIS_PREFIX,
  };
}
