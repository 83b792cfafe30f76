import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type Static, Type } from '@sinclair/typebox';
import {
  InfoResponse,
  LEAF_ENCODING,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS,
} from '@streamanchor/protocol';
import type { Redis } from 'ioredis';
import { problemResponses } from '../errors';

/** How long /healthz waits for Redis to answer PING. */
const REDIS_PING_TIMEOUT_MS = 1000;

export const HealthResponse = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  redis: Type.Union([Type.Literal('ok'), Type.Literal('down')]),
});
export type HealthResponse = Static<typeof HealthResponse>;

export interface InfoOptions {
  info: InfoResponse;
  redis: Redis;
}

export function buildInfo(config: {
  CHAIN_ID: number;
  CONTRACT_ADDRESS: string;
  DEPLOYMENT_BLOCK: number;
  PUBLIC_RPC_URL: string;
}): InfoResponse {
  return {
    protocol: PROTOCOL_VERSION,
    protocols: [...PROTOCOL_VERSIONS],
    chainId: config.CHAIN_ID,
    contract: config.CONTRACT_ADDRESS as InfoResponse['contract'],
    deploymentBlock: config.DEPLOYMENT_BLOCK,
    rpcUrl: config.PUBLIC_RPC_URL,
    leafEncoding: [...LEAF_ENCODING],
  };
}

/** GET /v1/info (what a client needs to verify receipts) and GET /healthz. */
export const infoRoutes: FastifyPluginAsyncTypebox<InfoOptions> = async (app, { info, redis }) => {
  app.get(
    '/v1/info',
    {
      schema: {
        summary: 'Chain, contract and leaf encoding for verifying receipts',
        response: { 200: InfoResponse, ...problemResponses },
      },
    },
    async () => info,
  );

  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness and Redis reachability',
        response: { 200: HealthResponse, 503: HealthResponse, ...problemResponses },
      },
    },
    async (request, reply) => {
      const redisUp = await pingRedis(redis).catch((error: unknown) => {
        request.log.warn({ err: error }, 'health check: Redis did not answer');
        return false;
      });
      reply.header('Cache-Control', 'no-store');
      if (!redisUp) return reply.code(503).send({ status: 'unavailable', redis: 'down' });
      return reply.code(200).send({ status: 'ok', redis: 'ok' });
    },
  );
};

async function pingRedis(redis: Redis): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no PONG within ${REDIS_PING_TIMEOUT_MS} ms`)),
      REDIS_PING_TIMEOUT_MS,
    );
  });
  try {
    return (await Promise.race([redis.ping(), timeout])) === 'PONG';
  } finally {
    clearTimeout(timer);
  }
}
