import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { type Static, Type } from '@sinclair/typebox';
import { LIMITS } from '@streamanchor/protocol';
import {
  ConfigError,
  LogEnv,
  type LogLevel,
  OpsEnv,
  PORT_RULE,
  parseEnv,
  RedisEnv,
  SessionRouteEnv,
} from '@streamanchor/service-kit';

/** The one UDP port a relay muxes every session on unless ICE_UDP_PORT says otherwise. */
export const DEFAULT_ICE_UDP_PORT = 10_000;

/** An IPv4 or IPv6 address, or a DNS hostname. */
const PUBLIC_ADDRESS_PATTERN =
  '^([0-9]{1,3}(\\.[0-9]{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*|(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)$';

const Int = (options: {
  default: number;
  minimum: number;
  maximum?: number;
  description: string;
}) => Type.Integer(options);

/** Every environment variable the relay reads; `description` is what a bad value's error shows. */
export const ConfigSchema = Type.Object({
  ...LogEnv,
  ...RedisEnv,
  ...OpsEnv,
  RELAY_ID: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9_.-]{1,100}$',
      description:
        'unique id of this relay (letters, digits, . _ -); default relay-<hostname>-<4 hex>',
    }),
  ),
  ICE_UDP_PORT: Int({
    ...PORT_RULE,
    default: DEFAULT_ICE_UDP_PORT,
    description: `N (default ${DEFAULT_ICE_UDP_PORT}) = every session muxed on UDP port N (publish it; one port per relay on a host); 0 = one ephemeral UDP port per session`,
  }),
  ICE_BIND_ADDRESS: Type.String({
    default: '127.0.0.1',
    minLength: 1,
    description: 'local address ICE binds to; 127.0.0.1 for the local stack, 0.0.0.0 in containers',
  }),
  ICE_PUBLIC_ADDRESS: Type.Optional(
    Type.String({
      pattern: PUBLIC_ADDRESS_PATTERN,
      description:
        'IP address or hostname clients reach the relay at, behind 1:1 NAT (a VM public IP, a published container port): every answer also gets a host candidate at it, on the same port (a hostname is resolved at start and every minute)',
    }),
  ),
  ICE_SERVERS: Type.String({
    default: '',
    description:
      'comma-separated STUN/TURN URLs for the relay itself (stun:host:port, turn:user:pass@host:port, or turn:host:port with ICE_TURN_SECRET); TURN over UDP only',
  }),
  ICE_TURN_SECRET: Type.Optional(
    Type.String({
      minLength: 16,
      description:
        "coturn's static-auth-secret: the relay mints a TURN REST credential (username <expiry>:<RELAY_ID>) for each session, for every turn:host:port in ICE_SERVERS that has no user:pass@ (at least 16 characters)",
    }),
  ),
  ICE_TURN_TTL_SECONDS: Int({
    default: 86_400,
    minimum: 60,
    maximum: 7 * 86_400,
    description:
      'lifetime of the TURN credentials the relay mints (s): coturn refuses an allocation refresh after it, so keep it above the longest session',
  }),
  ICE_USE_OFFER_CANDIDATES: Type.Boolean({
    default: false,
    description:
      'true = also send connectivity checks to the candidates an offer lists; false (default) = answer only peers that reach the relay (needed true only when the relay relies on its own TURN server)',
  }),
  MAX_MESSAGE_BYTES: Int({
    default: LIMITS.maxMessageBytes,
    minimum: 1024,
    maximum: 256 * 1024,
    description: 'largest data-channel message accepted (advertised as a=max-message-size)',
  }),
  MAX_PAYLOAD_BYTES: Int({
    default: LIMITS.maxPayloadBytes,
    minimum: 1,
    maximum: 256 * 1024,
    description: 'largest canonical payload accepted, in UTF-8 bytes',
  }),
  MAX_PAYLOAD_DEPTH: Int({
    default: LIMITS.maxDepth,
    minimum: 1,
    maximum: 256,
    description: 'deepest nesting of arrays/objects in a payload (announced in hello)',
  }),
  MAX_PAYLOAD_MEMBERS: Int({
    default: LIMITS.maxMembers,
    minimum: 1,
    maximum: 65_536,
    description: 'most members of any one array or object in a message (announced in hello)',
  }),
  MAX_PAYLOAD_TOTAL_MEMBERS: Int({
    default: LIMITS.maxTotalMembers,
    minimum: 1,
    maximum: 262_144,
    description: 'most members of all arrays and objects of one payload (announced in hello)',
  }),
  PUBLISH_RATE_PER_SESSION: Int({
    default: 500,
    minimum: 0,
    description:
      'records per second one session may publish (token bucket; 0 = unlimited); beyond it rate_limited',
  }),
  PUBLISH_BURST_PER_SESSION: Int({
    default: 1000,
    minimum: 1,
    description: 'records one session may publish at once above its rate (bucket size)',
  }),
  REFUSALS_CLOSE_AFTER: Int({
    default: 200,
    minimum: 0,
    description:
      'refused messages (rate_limited, malformed, too large, too deep, …) within one second after which the relay closes the session; 0 = never',
  }),
  REFUSED_BYTES_CLOSE_AFTER: Int({
    default: 1_048_576,
    minimum: 0,
    description:
      'total size of refused messages within one second after which the relay closes the session (a few large ones cost as much as many small ones); 0 = never',
  }),
  ABUSIVE_SUBJECT_SUSPEND_MS: Int({
    default: 30_000,
    minimum: 0,
    description:
      'how long a subject whose session was closed for refused messages may not open new sessions (ms, on every gateway); 0 = not at all',
  }),
  PUBLISH_RATE_PER_SUBJECT: Int({
    default: 1000,
    minimum: 0,
    description:
      'records per second all sessions of one subject may publish on this relay (0 = unlimited)',
  }),
  PUBLISH_BURST_PER_SUBJECT: Int({
    default: 2000,
    minimum: 1,
    description: 'records all sessions of one subject may publish at once above their rate',
  }),
  RECORD_FLUSH_MS: Int({
    default: 0,
    minimum: 0,
    description:
      'longest a record waits for companions while an add slot is free (0 = until the end of the event-loop turn)',
  }),
  RECORD_FLUSH_MAX: Int({
    default: 500,
    minimum: 1,
    maximum: 10_000,
    description: 'most records in one recordBatch job (one queue add takes up to 4 jobs)',
  }),
  RECORD_BUFFER_MAX: Int({
    default: 20_000,
    minimum: 1,
    description:
      'records waiting to be queued across all sessions; beyond it publishes are nacked unavailable',
  }),
  RECORD_BUFFER_MAX_PER_SESSION: Int({
    default: 2000,
    minimum: 1,
    description:
      "one session's share of RECORD_BUFFER_MAX; beyond it that session's publishes are nacked rate_limited",
  }),
  TOPIC_STREAM_MAX_LEN: Int({
    default: 20_000,
    minimum: 100,
    description:
      'records each topic stream keeps for subscribers (about; older ones are read from Postgres when a subscriber needs them)',
  }),
  MAX_SUBSCRIPTIONS: Int({
    default: LIMITS.maxSubscriptions,
    minimum: 1,
    maximum: 1024,
    description: 'topics one session may be subscribed to at once',
  }),
  HEARTBEAT_MS: Int({
    default: 2000,
    minimum: 100,
    description: 'registry heartbeat interval (TTL is 3x)',
  }),
  ...SessionRouteEnv,
  MAX_SESSIONS: Int({
    default: 1000,
    minimum: 1,
    description: 'sessions held at once; beyond it createSession is refused',
  }),
  GATHER_TIMEOUT_MS: Int({
    default: 5000,
    minimum: 100,
    description:
      'longest ICE gathering may take before the answer is sent with the candidates found so far',
  }),
  CONNECT_TIMEOUT_MS: Int({
    default: 30_000,
    minimum: 1000,
    description: 'a session whose data channel has not opened by then is closed',
  }),
  DISCONNECT_TIMEOUT_MS: Int({
    default: 10_000,
    minimum: 0,
    description: 'a session whose peer connection stays disconnected this long is closed',
  }),
  MAX_BUFFERED_BYTES: Int({
    default: 4 * 1024 * 1024,
    minimum: 64 * 1024,
    description: 'a session whose unsent outgoing bytes exceed this (client not reading) is closed',
  }),
  LOOKUP_TIMEOUT_MS: Int({
    default: 5000,
    minimum: 1,
    description:
      'how long the relay waits for the chain-indexer to answer a request for a session records of a batch, when a receipt notice carried only their number (ms)',
  }),
  DRAIN_TIMEOUT_MS: Int({
    default: 20_000,
    minimum: 0,
    description:
      'on SIGTERM: longest the relay drains (no new sessions; each session told relay_draining and left to reconnect elsewhere) before it ends the sessions still open (a second signal ends the drain at once); keep DRAIN_TIMEOUT_MS + CLOSE_GRACE_MS under the orchestrator kill timeout',
  }),
  CLOSE_GRACE_MS: Int({
    default: 5000,
    minimum: 0,
    description:
      'on delete, expiry or shutdown: longest the relay waits to hand over pending acks, then to let them arrive before the peer connection closes (at least 1 s)',
  }),
});

export interface Config {
  logLevel: LogLevel;
  redisUrl: string;
  redisPrefix: string;
  relayId: string;
  /** The ops server (GET /metrics, /readyz, /healthz); port 0 = none. */
  ops: { host: string; port: number };
  ice: {
    udpPort: number;
    bindAddress: string;
    publicAddress: string | undefined;
    /** URLs as given, and the turn: servers whose credentials are minted per session. */
    servers: (string | MintedTurnServer)[];
    /** coturn's static-auth-secret, for the turn: servers listed without credentials. */
    turnSecret: string | undefined;
    turnTtlS: number;
    useOfferCandidates: boolean;
  };
  maxMessageBytes: number;
  maxPayloadBytes: number;
  maxPayloadDepth: number;
  maxPayloadMembers: number;
  maxPayloadTotalMembers: number;
  publishQuota: {
    perSession: { ratePerSecond: number; burst: number };
    perSubject: { ratePerSecond: number; burst: number };
    /** Refused messages within one second that close the session (0: never). */
    closeAfterRefusals: number;
    /** Total size of refused messages within one second that closes the session (0: never). */
    closeAfterRefusedBytes: number;
    /** How long (ms) a subject closed for refusals may not open sessions (0: not at all). */
    suspendAbusiveSubjectMs: number;
  };
  recordFlushMs: number;
  recordFlushMax: number;
  /** How long a request to the chain-indexer (a session's records of a batch) may take (ms). */
  lookupTimeoutMs: number;
  recordBufferMax: number;
  recordBufferMaxPerSession: number;
  /** Approximate most records a topic's stream keeps (`XADD … MAXLEN ~`). */
  topicStreamMaxLen: number;
  maxSubscriptions: number;
  heartbeatMs: number;
  sessionTtlMs: number;
  maxSessions: number;
  gatherTimeoutMs: number;
  connectTimeoutMs: number;
  disconnectTimeoutMs: number;
  maxBufferedBytes: number;
  /** On SIGTERM: longest the relay drains before it ends the sessions still open (ms). */
  drainTimeoutMs: number;
  closeGraceMs: number;
}

export type Env = Static<typeof ConfigSchema>;

export function defaultRelayId(): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .slice(0, 60);
  return `relay-${host}-${randomBytes(2).toString('hex')}`;
}

/** A `turn:host:port` of ICE_SERVERS listed without credentials: minted per session from ICE_TURN_SECRET. */
export interface MintedTurnServer {
  hostname: string;
  port: number;
}

/** The one form ICE_TURN_SECRET mints credentials for: turn:host:port, UDP. */
const BARE_TURN_URL = /^turn:([^@/?:]+|\[[^\]]+\]):(\d+)(?:\?transport=udp)?$/i;

/** Reads the relay's configuration; throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const e = parseEnv('rtc-relay', ConfigSchema, env);
  const urls = e.ICE_SERVERS.split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const problems: { variable: string; message: string }[] = [];
  const servers: (string | MintedTurnServer)[] = [];
  for (const url of urls) {
    if (/^turns:/i.test(url) || /[?&]transport=tcp\b/i.test(url)) {
      problems.push({
        variable: 'ICE_SERVERS',
        message: `"${url}": the relay's ICE stack speaks TURN over UDP only (turn:host:port)`,
      });
    } else if (/^turn:/i.test(url) && !url.includes('@')) {
      const bare = BARE_TURN_URL.exec(url);
      if (e.ICE_TURN_SECRET === undefined) {
        problems.push({
          variable: 'ICE_SERVERS',
          message: `"${url}" has no user:pass@: set ICE_TURN_SECRET (coturn's static-auth-secret) or give the credentials`,
        });
      } else if (!bare) {
        problems.push({
          variable: 'ICE_SERVERS',
          message: `"${url}": ICE_TURN_SECRET mints credentials for turn:host:port only`,
        });
      } else {
        servers.push({ hostname: bare[1]!.replace(/^\[|\]$/g, ''), port: Number(bare[2]) });
      }
    } else {
      servers.push(url);
    }
  }
  if (e.ICE_UDP_PORT !== 0 && urls.some((url) => /^turn:/i.test(url))) {
    // libjuice allocates no TURN relay on a muxed port ("TURN servers are not supported in
    // mux mode"): it would answer without the relay candidate the operator asked for.
    problems.push({
      variable: 'ICE_UDP_PORT',
      message:
        'a relay with its own TURN server (turn: in ICE_SERVERS) needs ICE_UDP_PORT=0: its ICE stack allocates no TURN relay on a muxed port',
    });
  }
  if (problems.length > 0) throw new ConfigError('rtc-relay', problems);
  return {
    logLevel: e.LOG_LEVEL,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    relayId: e.RELAY_ID ?? defaultRelayId(),
    ops: { host: e.OPS_HOST, port: e.OPS_PORT },
    ice: {
      udpPort: e.ICE_UDP_PORT,
      bindAddress: e.ICE_BIND_ADDRESS,
      publicAddress: e.ICE_PUBLIC_ADDRESS,
      servers,
      turnSecret: e.ICE_TURN_SECRET,
      turnTtlS: e.ICE_TURN_TTL_SECONDS,
      useOfferCandidates: e.ICE_USE_OFFER_CANDIDATES,
    },
    maxMessageBytes: e.MAX_MESSAGE_BYTES,
    maxPayloadBytes: e.MAX_PAYLOAD_BYTES,
    maxPayloadDepth: e.MAX_PAYLOAD_DEPTH,
    maxPayloadMembers: e.MAX_PAYLOAD_MEMBERS,
    maxPayloadTotalMembers: e.MAX_PAYLOAD_TOTAL_MEMBERS,
    publishQuota: {
      perSession: { ratePerSecond: e.PUBLISH_RATE_PER_SESSION, burst: e.PUBLISH_BURST_PER_SESSION },
      perSubject: { ratePerSecond: e.PUBLISH_RATE_PER_SUBJECT, burst: e.PUBLISH_BURST_PER_SUBJECT },
      closeAfterRefusals: e.REFUSALS_CLOSE_AFTER,
      closeAfterRefusedBytes: e.REFUSED_BYTES_CLOSE_AFTER,
      suspendAbusiveSubjectMs: e.ABUSIVE_SUBJECT_SUSPEND_MS,
    },
    recordFlushMs: e.RECORD_FLUSH_MS,
    lookupTimeoutMs: e.LOOKUP_TIMEOUT_MS,
    recordFlushMax: e.RECORD_FLUSH_MAX,
    recordBufferMax: e.RECORD_BUFFER_MAX,
    recordBufferMaxPerSession: Math.min(e.RECORD_BUFFER_MAX_PER_SESSION, e.RECORD_BUFFER_MAX),
    topicStreamMaxLen: e.TOPIC_STREAM_MAX_LEN,
    maxSubscriptions: e.MAX_SUBSCRIPTIONS,
    heartbeatMs: e.HEARTBEAT_MS,
    sessionTtlMs: e.SESSION_TTL_MS,
    maxSessions: e.MAX_SESSIONS,
    gatherTimeoutMs: e.GATHER_TIMEOUT_MS,
    connectTimeoutMs: e.CONNECT_TIMEOUT_MS,
    disconnectTimeoutMs: e.DISCONNECT_TIMEOUT_MS,
    maxBufferedBytes: e.MAX_BUFFERED_BYTES,
    drainTimeoutMs: e.DRAIN_TIMEOUT_MS,
    closeGraceMs: e.CLOSE_GRACE_MS,
  };
}
