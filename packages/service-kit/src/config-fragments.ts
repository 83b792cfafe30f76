import { Type } from '@sinclair/typebox';

/**
 * The environment variables more than one service (or the local stack) reads, each with one
 * rule. A service builds its schema from these fragments and adds its own variables:
 *
 *   Type.Object({ ...LogEnv, ...RedisEnv, ...own })
 *
 * Where a reader needs another default or meaning (the local stack's REDIS_PREFIX defaults
 * to `sa-dev`; its REDIS_URL is optional because it can start a Redis), it spreads the
 * variable's `*_RULE` into its own schema, so the pattern and the bounds stay the same.
 */

/** pino's levels, quietest last. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** LOG_LEVEL: a union of literals, so a parsed value is a `LogLevel` without a cast. */
export const LogLevelSchema = Type.Union(
  LOG_LEVELS.map((level) => Type.Literal(level)),
  { default: 'info', description: `one of ${LOG_LEVELS.join(', ')}` },
);

/** Redis URL: redis://, or rediss:// for TLS; a password goes in the URL. */
export const REDIS_URL_RULE = { pattern: '^rediss?://' } as const;
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * Redis key prefix: letters, digits, `.`, `_`, `-`. No colon (keys are `${prefix}:…`), no
 * space, and no glob character (`*`, `?`, `[`), since prefixes are cleared with
 * `SCAN MATCH ${prefix}:*`.
 */
export const REDIS_PREFIX_RULE = { minLength: 1, pattern: '^[A-Za-z0-9_.-]+$' } as const;
export const DEFAULT_REDIS_PREFIX = 'sa';

/** Postgres connection URL. */
export const DATABASE_URL_RULE = { pattern: '^postgres(ql)?://' } as const;

/** Local data folder. */
export const DATA_DIR_RULE = { minLength: 1 } as const;

/** An HTTP(S) URL (JSON-RPC endpoints: polled, no WebSocket). */
export const HTTP_URL_RULE = { pattern: '^https?://' } as const;

/** A TCP or UDP port; 0 picks a free one. */
export const PORT_RULE = { minimum: 0, maximum: 65535 } as const;

/** Smallest accepted JWT_SECRET, in characters (HS256 wants at least 256 bits of key). */
export const MIN_JWT_SECRET_LENGTH = 32;
export const JWT_SECRET_RULE = { minLength: MIN_JWT_SECRET_LENGTH } as const;

/** LOG_LEVEL, read by every service and the local stack. */
export const LogEnv = {
  LOG_LEVEL: LogLevelSchema,
};

/** The BullMQ Redis every service shares, and the prefix that isolates one deployment. */
export const RedisEnv = {
  REDIS_URL: Type.String({
    ...REDIS_URL_RULE,
    default: DEFAULT_REDIS_URL,
    description: 'redis:// (or rediss://) URL of the Redis for the queues and the relay registry',
  }),
  REDIS_PREFIX: Type.String({
    ...REDIS_PREFIX_RULE,
    default: DEFAULT_REDIS_PREFIX,
    description:
      'prefix of every Redis key, the same for every service of one deployment (letters, digits, . _ -)',
  }),
};

/** The database of the chain services: Postgres, or an embedded PGlite in DATA_DIR. */
export const DatabaseEnv = {
  DATABASE_URL: Type.Optional(
    Type.String({
      ...DATABASE_URL_RULE,
      description: 'postgres:// URL; when unset, PGlite runs in DATA_DIR/pglite',
    }),
  ),
  DATA_DIR: Type.String({
    ...DATA_DIR_RULE,
    default: '.data',
    description: 'folder for local data (the embedded PGlite)',
  }),
};

/** The chain and the StreamAnchor contract on it. */
export const ChainEnv = {
  CHAIN_ID: Type.Integer({
    minimum: 1,
    description:
      'EVM chain id of the StreamAnchor contract (the services that call RPC_URL check it against eth_chainId at start)',
  }),
  CONTRACT_ADDRESS: Type.String({
    pattern: '^0x[0-9a-fA-F]{40}$',
    description: 'address of the StreamAnchor contract (0x + 40 hex digits)',
  }),
};

/** The JSON-RPC endpoint a service reads (and writes) the chain through. */
export const RpcEnv = {
  RPC_URL: Type.String({
    ...HTTP_URL_RULE,
    description: 'HTTP(S) JSON-RPC endpoint of the chain (polled; no WebSocket)',
  }),
};

/** Where reading the contract's history starts. */
export const DeploymentEnv = {
  DEPLOYMENT_BLOCK: Type.Integer({
    minimum: 0,
    description: 'block the StreamAnchor contract was deployed in; reading its logs starts there',
  }),
};

/** Session routes in Redis: the gateway writes them, the relay refreshes them. */
export const SessionRouteEnv = {
  SESSION_TTL_MS: Type.Integer({
    minimum: 1000,
    default: 30_000,
    description:
      'lifetime of a session route in Redis; the relay refreshes it on every heartbeat (ms)',
  }),
};

/** The ops server's default port (Prometheus' conventional exporter port). */
export const DEFAULT_OPS_PORT = 9464;

/** The ops server of every service: GET /metrics, /readyz and /healthz, never on the public port. */
export const OpsEnv = {
  OPS_PORT: Type.Integer({
    ...PORT_RULE,
    default: DEFAULT_OPS_PORT,
    description: `port of the ops server (GET /metrics, /readyz, /healthz; default ${DEFAULT_OPS_PORT}); 0 = no ops server`,
  }),
  OPS_HOST: Type.String({
    minLength: 1,
    default: '127.0.0.1',
    description:
      'address the ops server listens on; 0.0.0.0 in containers (keep it off the public network)',
  }),
};
