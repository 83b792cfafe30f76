import { Type } from '@sinclair/typebox';
import {
  ChainEnv,
  DatabaseEnv,
  DeploymentEnv,
  LogEnv,
  type LogLevel,
  OpsEnv,
  parseEnv,
  RedisEnv,
  RpcEnv,
} from '@streamanchor/service-kit';

export const ConfigSchema = Type.Object({
  ...RpcEnv,
  ...ChainEnv,
  ...DeploymentEnv,
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
    description:
      'most blocks per eth_getLogs call (each call is sized by the log density of the last, and halved when one fails)',
  }),
  RECEIPTS_PER_JOB: Type.Integer({
    minimum: 1,
    default: 250,
    description:
      'most records in one receiptNotice job (a notice for more records is split into several jobs); in a later notice of a batch, which gives each session only its number of records, most sessions',
  }),
  RECEIPT_CACHE_RECORDS: Type.Integer({
    minimum: 0,
    default: 50_000,
    description:
      'records of recently announced batches kept in memory (with their verified proofs) for the next notice of the same batch; 0: read and verify every notice',
  }),
  INDEXER_LEASE_MS: Type.Integer({
    minimum: 500,
    default: 5000,
    description:
      'leader lock (Postgres): an active indexer that stops answering (host gone, frozen, cut off) keeps the lock at most this long before a standby takes over; a killed or stopped one hands over at once',
  }),
  ...DatabaseEnv,
  ...LogEnv,
  ...RedisEnv,
  ...OpsEnv,
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
  receiptCacheRecords: number;
  /** See INDEXER_LEASE_MS and src/leader. */
  leaseMs: number;
  databaseUrl: string | undefined;
  dataDir: string;
  logLevel: LogLevel;
  redisUrl: string;
  redisPrefix: string;
  /** The ops server (GET /metrics, /readyz, /healthz); absent or port 0 = none. */
  ops?: { host: string; port: number };
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
    receiptCacheRecords: parsed.RECEIPT_CACHE_RECORDS,
    leaseMs: parsed.INDEXER_LEASE_MS,
    databaseUrl: parsed.DATABASE_URL,
    dataDir: parsed.DATA_DIR,
    logLevel: parsed.LOG_LEVEL,
    redisUrl: parsed.REDIS_URL,
    redisPrefix: parsed.REDIS_PREFIX,
    ops: { host: parsed.OPS_HOST, port: parsed.OPS_PORT },
  };
}
