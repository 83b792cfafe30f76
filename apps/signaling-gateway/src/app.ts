import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import {
  createAuditPublisher,
  createIndexerClient,
  createRelayRegistry,
  type Keys,
} from '@streamanchor/bus';
import { LIMITS } from '@streamanchor/protocol';
import { createOpsServer, type Logger } from '@streamanchor/service-kit';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Redis } from 'ioredis';
import { createAuthenticator } from './auth';
import type { Config } from './config';
import { installCors } from './cors';
import { clientErrorHandler, frameworkErrors, installProblemHandling, requireHost } from './errors';
import { historyRoutes } from './history';
import { createIceServerProvider, type IceServerProvider } from './ice';
import { buildInfo, infoRoutes } from './info';
import { installGatewayMetrics } from './metrics';
import { recordsRoutes } from './records';
import { createRelayClient, sessionsRoutes } from './sessions';
import { webRoutes } from './web';

export interface AppDeps {
  config: Config;
  logger: Logger;
  /**
   * Redis for the registry and the relays' and the indexer's queues. Owned by the caller (not
   * closed by stop()). Prefer a client with a small `maxRetriesPerRequest`, so that requests fail
   * rather than hang while Redis is down; queue-event readers duplicate it as BullMQ needs.
   */
  redis: Redis;
  keys: Keys;
  /** Where the ICE servers handed to clients come from; default: built from config (ICE_PROVIDER). */
  iceServers?: IceServerProvider;
}

export interface App {
  fastify: ReturnType<typeof buildFastify>;
  /** The ICE server provider (its credentialsIssued counts the TURN credentials handed out). */
  iceServers: IceServerProvider;
  /**
   * Listens on HOST:PORT; resolves with the actual base URL (useful with PORT=0). Also starts
   * the ops server (GET /metrics, /readyz, /healthz) on OPS_HOST:OPS_PORT (0: none), never
   * on the public port.
   */
  start(): Promise<{ url: string }>;
  /** Stops accepting requests, lets in-flight ones finish, closes the relay and indexer queues. */
  stop(): Promise<void>;
}

/**
 * Fastify's per-request log lines ("incoming request", "request completed": two lines per
 * request at info) are written at debug, except a completion at 5xx (info) or with an error
 * (error, as Fastify does). So a flood of refused requests (401, 429) writes no log lines at
 * the default LOG_LEVEL=info; the problem handler still logs internal errors itself.
 */
export class QuietRequestLogs extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(
    error: Error | null | undefined,
    _request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (error) {
      reply.log.error(
        { res: reply, err: error, responseTime: reply.elapsedTime },
        'request errored',
      );
    } else if (reply.statusCode >= 500) {
      reply.log.info({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
    } else {
      reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
    }
  }
}

function buildFastify(config: Config, logger: Logger) {
  return Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new QuietRequestLogs(),
    // A hop count (proxy-addr's: the socket is hop 0), never `true`, which takes the
    // leftmost entry, the one the client wrote.
    trustProxy:
      config.TRUST_PROXY > 0 ? (_address: string, hop: number) => hop < config.TRUST_PROXY : false,
    bodyLimit: LIMITS.maxSdpBytes,
    frameworkErrors,
    clientErrorHandler,
    return503OnClosing: true,
    // Slow or half-sent requests are closed (408 problem, see clientErrorHandler): the whole
    // request must arrive within REQUEST_TIMEOUT_MS, its headers within HEADERS_TIMEOUT_MS;
    // an idle keep-alive socket is closed after KEEP_ALIVE_TIMEOUT_MS, any silent socket
    // after CONNECTION_TIMEOUT_MS.
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
    connectionTimeout: config.CONNECTION_TIMEOUT_MS,
    http: {
      headersTimeout: config.HEADERS_TIMEOUT_MS,
      // Node checks the two timeouts above on this interval (30 s by default).
      connectionsCheckingInterval: Math.max(
        50,
        Math.min(
          1000,
          Math.floor(Math.min(config.HEADERS_TIMEOUT_MS, config.REQUEST_TIMEOUT_MS) / 4),
        ),
      ),
      // Node answers a missing Host with a bare 400; requireHost below answers a problem.
      requireHostHeader: false,
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
}

/**
 * The public HTTP API: signaling (WHIP-style sessions), receipt lookups, history (a topic's
 * records, one record, a batch's leaves), info, health and the demo page.
 */
export function createApp({ config, logger, redis, keys, ...deps }: AppDeps): App {
  const fastify = buildFastify(config, logger);
  installProblemHandling(fastify, { logger });
  installCors(fastify, config.CORS_ORIGINS);
  fastify.addHook('onRequest', requireHost);
  // Rate limits count in Redis, so every gateway of a deployment shares them; the routes
  // create their limiters (createRateLimit) and answer 429 problems themselves.
  fastify.register(rateLimit, {
    global: false,
    redis,
    nameSpace: `${keys.prefix}:rate-limit:`,
    skipOnError: false,
  });
  fastify.addHook('onSend', async (_request, reply) => {
    reply.header('X-Content-Type-Options', 'nosniff');
  });

  const authenticate = createAuthenticator({
    secret: config.JWT_SECRET,
    audience: config.JWT_AUDIENCE,
    issuer: config.JWT_ISSUER,
    maxLifetimeSeconds: config.MAX_TOKEN_TTL_SECONDS,
  });
  const registry = createRelayRegistry({ redis, keys });
  const relays = createRelayClient({
    bus: { connection: redis, keys },
    timeoutMs: config.SIGNALING_TIMEOUT_MS,
    logger,
  });
  const audit = createAuditPublisher(
    { connection: redis, keys },
    {
      onError: (error) => logger.warn({ err: error }, 'could not queue audit events; will retry'),
    },
  );
  const iceServers = deps.iceServers ?? createIceServerProvider(config, { logger });
  const indexer = createIndexerClient({
    bus: { connection: redis, keys },
    timeoutMs: config.LOOKUP_TIMEOUT_MS,
    logger,
  });

  fastify.register(sessionsRoutes, {
    authenticate,
    registry,
    relays,
    logger,
    signalingTimeoutMs: config.SIGNALING_TIMEOUT_MS,
    relayStaleAfterMs: config.RELAY_STALE_AFTER_MS,
    relayListCacheMs: config.RELAY_LIST_CACHE_MS,
    sessionTtlMs: config.SESSION_TTL_MS,
    limits: {
      perIp: config.SESSION_RATE_PER_IP,
      perSubject: config.SESSION_RATE_PER_SUBJECT,
      windowMs: config.SESSION_RATE_WINDOW_MS,
      maxSessionsPerSubject: config.MAX_SESSIONS_PER_SUBJECT,
    },
    audit,
    iceServers,
  });
  fastify.register(recordsRoutes, { authenticate, indexer, logger });
  fastify.register(historyRoutes, {
    authenticate,
    indexer,
    logger,
    limits: {
      perIp: config.HISTORY_RATE_PER_IP,
      perSubject: config.HISTORY_RATE_PER_SUBJECT,
      windowMs: config.HISTORY_RATE_WINDOW_MS,
    },
    audit,
  });
  fastify.register(infoRoutes, { info: buildInfo(config), redis });
  if (config.WEB_DIST_DIR) fastify.register(webRoutes, { root: config.WEB_DIST_DIR });
  const stopMetrics = installGatewayMetrics(fastify, { iceServers });
  const ops = createOpsServer({
    host: config.OPS_HOST,
    port: config.OPS_PORT,
    logger,
    checks: { redis: () => redis.ping() },
  });

  let stopping: Promise<void> | undefined;
  return {
    fastify,
    iceServers,
    async start() {
      const url = await fastify.listen({ host: config.HOST, port: config.PORT });
      await ops.start();
      return { url };
    },
    stop() {
      stopping ??= (async () => {
        try {
          await fastify.close();
        } finally {
          stopMetrics();
          await Promise.all([relays.close(), indexer.close(), audit.close(), ops.stop()]);
        }
      })();
      return stopping;
    },
  };
}
