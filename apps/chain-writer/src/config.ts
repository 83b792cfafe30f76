import { type Static, Type } from '@sinclair/typebox';
import { LogLevelSchema, parseEnv } from '@streamanchor/service-kit';

export const ConfigSchema = Type.Object({
  RPC_URL: Type.String({
    pattern: '^https?://',
    description: 'JSON-RPC endpoint of the chain, over HTTP(S) (no WebSocket)',
  }),
  CHAIN_ID: Type.Integer({
    minimum: 1,
    description: 'chain id the RPC must report (checked against eth_chainId at start)',
  }),
  CONTRACT_ADDRESS: Type.String({
    pattern: '^0x[0-9a-fA-F]{40}$',
    description: 'address of the StreamAnchor contract',
  }),
  WRITER_PRIVATE_KEY: Type.String({
    pattern: '^0x[0-9a-fA-F]{64}$',
    description: 'the signer key (0x + 64 hex) holding WRITER_ROLE; one writer process per key',
  }),
  BATCH_MAX_RECORDS: Type.Integer({
    minimum: 1,
    maximum: 65_536,
    default: 1000,
    description: 'a batch is cut as soon as this many records wait',
  }),
  BATCH_MAX_AGE_MS: Type.Integer({
    minimum: 0,
    default: 1000,
    description: 'a non-empty batch is cut when its oldest unbatched record waited this long (ms)',
  }),
  RECORDS_CONCURRENCY: Type.Integer({
    minimum: 1,
    default: 2,
    description: 'records jobs processed at once',
  }),
  TX_CONFIRM_TIMEOUT_MS: Type.Integer({
    minimum: 1000,
    default: 30_000,
    description: 'an anchor tx not mined after this long is re-broadcast with bumped fees (ms)',
  }),
  AUDIT_ANCHOR_INTERVAL_MS: Type.Integer({
    minimum: 100,
    default: 60_000,
    description: 'how often the audit log head is anchored on chain, when it moved (ms)',
  }),
  DATABASE_URL: Type.Optional(
    Type.String({
      pattern: '^postgres(ql)?://',
      description: 'postgres:// URL; when unset, PGlite runs in DATA_DIR/pglite',
    }),
  ),
  DATA_DIR: Type.String({ default: '.data', description: 'folder for the embedded PGlite data' }),
  LOG_LEVEL: LogLevelSchema,
  REDIS_URL: Type.String({
    default: 'redis://127.0.0.1:6379',
    pattern: '^rediss?://',
    description: 'redis:// URL of the BullMQ Redis',
  }),
  REDIS_PREFIX: Type.String({
    default: 'sa',
    minLength: 1,
    description: 'prefix of every Redis key (isolates deployments sharing a Redis)',
  }),
});

export type Config = Static<typeof ConfigSchema> & { WRITER_PRIVATE_KEY: `0x${string}` };

/** Reads the writer's configuration from the environment; throws ConfigError naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  return parseEnv('chain-writer', ConfigSchema, env) as Config;
}
