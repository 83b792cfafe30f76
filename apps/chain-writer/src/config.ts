import { type Static, Type } from '@sinclair/typebox';
import {
  ChainEnv,
  DatabaseEnv,
  LogEnv,
  OpsEnv,
  parseEnv,
  RedisEnv,
  RpcEnv,
} from '@streamanchor/service-kit';

export const ConfigSchema = Type.Object({
  ...RpcEnv,
  ...ChainEnv,
  WRITER_PRIVATE_KEY: Type.String({
    pattern: '^0x[0-9a-fA-F]{64}$',
    description: 'the signer key (0x + 64 hex) holding WRITER_ROLE; one writer process per key',
  }),
  BATCH_MAX_RECORDS: Type.Integer({
    minimum: 1,
    maximum: 65_536,
    default: 8192,
    description:
      'most records in one batch; a batch is cut as soon as this many wait (and the previous batch is signed)',
  }),
  BATCH_MAX_AGE_MS: Type.Integer({
    minimum: 0,
    default: 100,
    description:
      'a non-empty batch is cut when its oldest unbatched record waited this long (ms) and the previous batch is signed',
  }),
  RECORDS_CONCURRENCY: Type.Integer({
    minimum: 1,
    default: 16,
    description:
      'records jobs held at once; the jobs held together are stored in one transaction (group commit)',
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
  // Optional rather than a default of 0: unset and 0 both keep payloads forever.
  PAYLOAD_RETENTION_DAYS: Type.Optional(
    Type.Integer({
      minimum: 0,
      description:
        'days a record payload is kept, counted from when its batch was built, once the batch is final; then it is set to NULL (leaf fields, roots and proofs stay; history serves payload null). Unset or 0 = keep forever',
    }),
  ),
  ...DatabaseEnv,
  ...LogEnv,
  ...RedisEnv,
  ...OpsEnv,
});

export type Config = Static<typeof ConfigSchema> & { WRITER_PRIVATE_KEY: `0x${string}` };

/** Reads the writer's configuration from the environment; throws ConfigError naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  return parseEnv('chain-writer', ConfigSchema, env) as Config;
}
