import { statSync } from 'node:fs';
import { type Static, Type } from '@sinclair/typebox';
import {
  ChainEnv,
  ConfigError,
  DeploymentEnv,
  HTTP_URL_RULE,
  JWT_SECRET_RULE,
  LogEnv,
  MIN_JWT_SECRET_LENGTH,
  OpsEnv,
  PORT_RULE,
  parseEnv,
  RedisEnv,
  SessionRouteEnv,
} from '@streamanchor/service-kit';
import { ICE_URI } from './ice/link';
import { CLOUDFLARE_MAX_TTL_S, CLOUDFLARE_TURN_API_URL } from './ice/providers';

export const SERVICE_NAME = 'signaling-gateway';

/** Values of ICE_PROVIDER. */
export const ICE_PROVIDERS = ['none', 'static', 'coturn', 'cloudflare'] as const;
/** Shortest accepted TURN_SECRET, in characters. */
export const MIN_TURN_SECRET_LENGTH = 16;

/** Smallest accepted JWT_SECRET, in characters (the one rule, shared with the local stack). */
export { MIN_JWT_SECRET_LENGTH };

const JwtSecret = Type.String({
  ...JWT_SECRET_RULE,
  description: `HS256 secret shared with whoever mints tokens; at least ${MIN_JWT_SECRET_LENGTH} characters`,
});

export const ConfigSchema = Type.Object({
  HOST: Type.String({ default: '127.0.0.1', description: 'address the HTTP server binds' }),
  PORT: Type.Integer({
    ...PORT_RULE,
    default: 8080,
    description: 'TCP port of the HTTP server (0 picks a free one)',
  }),
  JWT_SECRET: JwtSecret,
  SIGNALING_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    default: 5000,
    description: 'how long the gateway waits for a relay to answer a session request (ms)',
  }),
  LOOKUP_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    default: 3000,
    description:
      'how long the gateway waits for the chain-indexer to answer a lookup: a receipt, history (ms)',
  }),
  RELAY_STALE_AFTER_MS: Type.Integer({
    minimum: 1,
    default: 6000,
    description: 'a relay whose last heartbeat is older than this is not given new sessions (ms)',
  }),
  ...SessionRouteEnv,
  RELAY_LIST_CACHE_MS: Type.Integer({
    minimum: 0,
    default: 500,
    description:
      'how long one read of the live relays (three Redis round trips) serves new sessions (ms; 0 = read it for every request)',
  }),
  JWT_AUDIENCE: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'when set, tokens must carry this aud claim (or list it)',
    }),
  ),
  JWT_ISSUER: Type.Optional(
    Type.String({ minLength: 1, description: 'when set, tokens must carry this iss claim' }),
  ),
  MAX_TOKEN_TTL_SECONDS: Type.Integer({
    minimum: 1,
    default: 86400,
    description: 'longest accepted token lifetime, exp − iat (exp − now without iat), in seconds',
  }),
  SESSION_RATE_PER_IP: Type.Integer({
    minimum: 1,
    default: 120,
    description: 'POST /v1/sessions allowed per client address per SESSION_RATE_WINDOW_MS',
  }),
  SESSION_RATE_PER_SUBJECT: Type.Integer({
    minimum: 1,
    default: 60,
    description: 'POST /v1/sessions allowed per token subject per SESSION_RATE_WINDOW_MS',
  }),
  SESSION_RATE_WINDOW_MS: Type.Integer({
    minimum: 1,
    default: 60000,
    description: 'window of the session rate limits, shared by every gateway through Redis (ms)',
  }),
  HISTORY_RATE_PER_IP: Type.Integer({
    minimum: 1,
    default: 2400,
    description:
      'history reads (GET /v1/topics/…/records, /v1/records/…, /v1/batches/…) allowed per client address per HISTORY_RATE_WINDOW_MS',
  }),
  HISTORY_RATE_PER_SUBJECT: Type.Integer({
    minimum: 1,
    default: 1200,
    description: 'history reads allowed per token subject per HISTORY_RATE_WINDOW_MS',
  }),
  HISTORY_RATE_WINDOW_MS: Type.Integer({
    minimum: 1,
    default: 60000,
    description: 'window of the history rate limits, shared by every gateway through Redis (ms)',
  }),
  MAX_SESSIONS_PER_SUBJECT: Type.Integer({
    minimum: 1,
    default: 20,
    description:
      'live sessions one subject may hold at once; a maxSessions token claim overrides it',
  }),
  REQUEST_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    default: 10000,
    description:
      'a request (headers and body) not fully received within this is answered 408 and closed (ms)',
  }),
  HEADERS_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    default: 5000,
    description: 'request headers not fully received within this are answered 408 and closed (ms)',
  }),
  KEEP_ALIVE_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    default: 5000,
    description: 'an idle keep-alive connection is closed after this (ms)',
  }),
  CONNECTION_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    default: 30000,
    description:
      'a socket with no traffic for this long is closed (ms); above SIGNALING_TIMEOUT_MS',
  }),
  ...ChainEnv,
  ...DeploymentEnv,
  PUBLIC_RPC_URL: Type.String({
    ...HTTP_URL_RULE,
    description: 'HTTP JSON-RPC URL browsers use to read the chain (served in /v1/info)',
  }),
  WEB_DIST_DIR: Type.Optional(
    Type.String({ description: 'directory of the built demo page, served at / when set' }),
  ),
  TRUST_PROXY: Type.Integer({
    minimum: 0,
    maximum: 8,
    default: 0,
    description:
      "how many proxies in front of the gateway append to X-Forwarded-For: the client address is the entry that many hops back. 0: none, the socket's address. 1 behind Cloudflare Tunnel (cloudflared is the hop; Cloudflare's edge appends the client's address last). Not a yes/no: trusting every entry would let a client choose its address (and dodge per-address limits) by sending its own X-Forwarded-For",
  }),
  CORS_ORIGINS: Type.Optional(
    Type.String({
      description: 'comma-separated origins allowed by CORS, or * for any; unset disables CORS',
    }),
  ),
  ICE_PROVIDER: Type.Union(
    ICE_PROVIDERS.map((provider) => Type.Literal(provider)),
    {
      default: 'none',
      description:
        'where the ICE servers handed to clients come from: none, static (ICE_STUN_URLS), coturn (TURN REST credentials from TURN_SECRET), cloudflare (Cloudflare TURN API)',
    },
  ),
  ICE_STUN_URLS: Type.Optional(
    Type.String({
      description:
        "comma-separated stun:/stuns: URIs handed to every client (the static list; also listed by coturn and cloudflare's fallback)",
    }),
  ),
  TURN_URLS: Type.Optional(
    Type.String({
      description:
        'comma-separated turn:/turns: URIs of the coturn server(s) (ICE_PROVIDER=coturn)',
    }),
  ),
  TURN_SECRET: Type.Optional(
    Type.String({
      minLength: MIN_TURN_SECRET_LENGTH,
      description: `coturn's static-auth-secret (use-auth-secret), at least ${MIN_TURN_SECRET_LENGTH} characters (ICE_PROVIDER=coturn)`,
    }),
  ),
  TURN_TTL_SECONDS: Type.Integer({
    minimum: 60,
    maximum: CLOUDFLARE_MAX_TTL_S,
    default: 86400,
    description:
      "lifetime of a session's TURN credentials (s); never beyond the token's exp (coturn and cloudflare)",
  }),
  CLOUDFLARE_TURN_KEY_ID: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'Cloudflare TURN key id (ICE_PROVIDER=cloudflare)',
    }),
  ),
  CLOUDFLARE_TURN_API_TOKEN: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "Cloudflare TURN key's API token, sent as a bearer token (ICE_PROVIDER=cloudflare)",
    }),
  ),
  CLOUDFLARE_TURN_API_URL: Type.String({
    ...HTTP_URL_RULE,
    default: CLOUDFLARE_TURN_API_URL,
    description:
      "root of Cloudflare's TURN API (…/turn/keys/<id>/credentials/generate-ice-servers is appended)",
  }),
  ICE_PROVIDER_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    default: 2000,
    description:
      "how long the gateway waits for Cloudflare's TURN API before handing out ICE_STUN_URLS instead (ms)",
  }),
  ...LogEnv,
  ...RedisEnv,
  ...OpsEnv,
});

type RawConfig = Static<typeof ConfigSchema>;

export interface Config extends Omit<RawConfig, 'CORS_ORIGINS' | 'ICE_STUN_URLS' | 'TURN_URLS'> {
  /** Parsed CORS_ORIGINS: empty when CORS is off; ['*'] allows any origin. */
  CORS_ORIGINS: string[];
  /** Parsed ICE_STUN_URLS (empty when unset). */
  ICE_STUN_URLS: string[];
  /** Parsed TURN_URLS (empty when unset). */
  TURN_URLS: string[];
}

type Env = Record<string, string | undefined>;

/** Reads the gateway's configuration from `env`; throws ConfigError naming each bad variable. */
export function loadConfig(env: Env): Config {
  const raw = parseEnv(SERVICE_NAME, ConfigSchema, env);
  const problems: { variable: string; message: string }[] = [];

  const origins = commaList(raw.CORS_ORIGINS);
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      problems.push({
        variable: 'CORS_ORIGINS',
        message: `"${origin}" is not an origin like https://example.com (scheme and host, no path)`,
      });
    }
  }

  if (raw.WEB_DIST_DIR !== undefined && !isDirectory(raw.WEB_DIST_DIR)) {
    problems.push({ variable: 'WEB_DIST_DIR', message: `${raw.WEB_DIST_DIR} is not a directory` });
  }

  if (raw.OPS_PORT !== 0 && raw.OPS_PORT === raw.PORT) {
    problems.push({
      variable: 'OPS_PORT',
      message: `must differ from PORT (${raw.PORT}): /metrics stays off the public port`,
    });
  }

  if (raw.HEADERS_TIMEOUT_MS > raw.REQUEST_TIMEOUT_MS) {
    problems.push({
      variable: 'HEADERS_TIMEOUT_MS',
      message: `must not exceed REQUEST_TIMEOUT_MS (${raw.REQUEST_TIMEOUT_MS})`,
    });
  }
  if (raw.CONNECTION_TIMEOUT_MS <= raw.SIGNALING_TIMEOUT_MS) {
    problems.push({
      variable: 'CONNECTION_TIMEOUT_MS',
      message: `must exceed SIGNALING_TIMEOUT_MS (${raw.SIGNALING_TIMEOUT_MS}): a request waiting for a relay sends nothing`,
    });
  }

  const stunUrls = commaList(raw.ICE_STUN_URLS);
  const turnUrls = commaList(raw.TURN_URLS);
  problems.push(...iceProblems(raw, stunUrls, turnUrls));

  if (problems.length > 0) throw new ConfigError(SERVICE_NAME, problems);
  return { ...raw, CORS_ORIGINS: origins, ICE_STUN_URLS: stunUrls, TURN_URLS: turnUrls };
}

function commaList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/** What ICE_PROVIDER needs, and URIs of the right schemes. */
function iceProblems(
  raw: RawConfig,
  stunUrls: string[],
  turnUrls: string[],
): { variable: string; message: string }[] {
  const problems: { variable: string; message: string }[] = [];
  for (const url of stunUrls) {
    if (/^turns?:/i.test(url)) {
      problems.push({
        variable: 'ICE_STUN_URLS',
        message: `"${url}" is a TURN URI: TURN credentials are per session, so use ICE_PROVIDER=coturn (TURN_URLS) or cloudflare`,
      });
    } else if (!ICE_URI.test(url)) {
      problems.push({
        variable: 'ICE_STUN_URLS',
        message: `"${url}" is not a stun: or stuns: URI like stun:stun.example.net:3478`,
      });
    }
  }
  for (const url of turnUrls) {
    if (!ICE_URI.test(url) || !/^turns?:/i.test(url)) {
      problems.push({
        variable: 'TURN_URLS',
        message: `"${url}" is not a turn: or turns: URI like turn:turn.example.net:3478?transport=udp`,
      });
    }
  }
  const require = (variable: string, present: boolean) => {
    if (!present)
      problems.push({ variable, message: `required with ICE_PROVIDER=${raw.ICE_PROVIDER}` });
  };
  switch (raw.ICE_PROVIDER) {
    case 'static':
      require('ICE_STUN_URLS', stunUrls.length > 0);
      break;
    case 'coturn':
      require('TURN_URLS', turnUrls.length > 0);
      require('TURN_SECRET', raw.TURN_SECRET !== undefined);
      break;
    case 'cloudflare':
      require('CLOUDFLARE_TURN_KEY_ID', raw.CLOUDFLARE_TURN_KEY_ID !== undefined);
      require('CLOUDFLARE_TURN_API_TOKEN', raw.CLOUDFLARE_TURN_API_TOKEN !== undefined);
      break;
    case 'none':
      break;
  }
  return problems;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
