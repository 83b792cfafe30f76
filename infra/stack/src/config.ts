import { resolve } from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import {
  DATA_DIR_RULE,
  DATABASE_URL_RULE,
  JWT_SECRET_RULE,
  LogEnv,
  MIN_JWT_SECRET_LENGTH,
  PORT_RULE,
  parseEnv,
  REDIS_PREFIX_RULE,
  REDIS_URL_RULE,
} from '@streamanchor/service-kit';
import { REPO_ROOT } from './paths';

const Port = (description: string, defaultValue?: number) =>
  Type.Integer({
    ...PORT_RULE,
    description,
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
  });

/**
 * The local stack's own settings. Variables that the services also read (DATABASE_URL,
 * REDIS_URL, REDIS_PREFIX, PORT, ICE_UDP_PORT, JWT_SECRET, DATA_DIR, LOG_LEVEL) keep their
 * meaning and their rule (the `*_RULE` fragments of @streamanchor/service-kit); the stack
 * passes them on to the services that use them. Only a default (REDIS_PREFIX is `sa-dev`
 * here; REDIS_URL has none) or a description may differ.
 */
export const StackConfigSchema = Type.Object({
  DATABASE_URL: Type.Optional(
    Type.String({
      ...DATABASE_URL_RULE,
      description:
        'postgres:// URL; when unset the chain services share one embedded PGlite in DATA_DIR',
    }),
  ),
  REDIS_URL: Type.Optional(
    Type.String({
      ...REDIS_URL_RULE,
      description: 'redis:// URL; when unset the stack uses 127.0.0.1:6379 or starts redis-server',
    }),
  ),
  REDIS_PREFIX: Type.String({
    ...REDIS_PREFIX_RULE,
    default: 'sa-dev',
    description:
      'Redis key prefix (letters, digits, . _ -); the dev stack discards queued work under it at start (the chain is fresh)',
  }),
  HOST: Type.String({
    minLength: 1,
    default: '127.0.0.1',
    description: 'address the signaling gateway listens on',
  }),
  PORT: Port('HTTP port of the signaling gateway (and the demo page)', 8080),
  ANVIL_PORT: Port('port of the local anvil chain', 8545),
  ANVIL_BLOCK_TIME: Type.Integer({
    minimum: 0,
    default: 1,
    description: 'seconds between anvil blocks; 0 mines a block per transaction',
  }),
  DATA_DIR: Type.String({
    ...DATA_DIR_RULE,
    default: '.data',
    description: 'folder for local state (PGlite, the JWT secret); relative to the repository root',
  }),
  JWT_SECRET: Type.Optional(
    Type.String({
      ...JWT_SECRET_RULE,
      description: `HS256 secret for bearer tokens (≥${MIN_JWT_SECRET_LENGTH} chars); default: generated once into DATA_DIR/jwt-secret`,
    }),
  ),
  ICE_UDP_PORT: Type.Optional(
    Port(
      'the one UDP port the relay muxes every WebRTC session on; relay i of several gets ICE_UDP_PORT + i (0 or unset: an ephemeral port per session, not the relay default, so that stacks run side by side)',
    ),
  ),
  OPS_PORT: Type.Optional(
    Port(
      'first ops port (GET /metrics, /readyz, /healthz), one per service process from it on: relay i gets OPS_PORT + i, then the gateway, then chain-services (writer and indexer metrics together; with DATABASE_URL the writer, then the indexer); unset: no ops servers, so that stacks run side by side',
    ),
  ),
  CPU_PROFILE_DIR: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "when set, every service runs with node --cpu-prof and writes its profile there on exit (open it in Chrome's DevTools); relative to the repository root",
    }),
  ),
  ...LogEnv,
});

export type StackEnv = Static<typeof StackConfigSchema>;

export interface StackConfig extends Omit<StackEnv, 'DATA_DIR' | 'CPU_PROFILE_DIR'> {
  /** Absolute path. */
  DATA_DIR: string;
  /** Absolute path, when set. */
  CPU_PROFILE_DIR: string | undefined;
}

/** Reads the stack's settings; throws ConfigError naming every bad variable. */
export function loadStackConfig(env: Record<string, string | undefined>): StackConfig {
  const parsed = parseEnv('stack', StackConfigSchema, env);
  return {
    ...parsed,
    DATA_DIR: resolve(REPO_ROOT, parsed.DATA_DIR),
    CPU_PROFILE_DIR:
      parsed.CPU_PROFILE_DIR === undefined ? undefined : resolve(REPO_ROOT, parsed.CPU_PROFILE_DIR),
  };
}
