import { Value } from '@sinclair/typebox/value';
import {
  InfoResponse,
  LEAF_ENCODING,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS,
} from '@streamanchor/protocol';
import { getFreePort } from '@streamanchor/testing';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, TEST_CONTRACT, type TestGateway } from '../../test/support';

describe('info and health', () => {
  let gateway: TestGateway | undefined;
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });

  it('default: GET /v1/info tells a client how to verify receipts', async () => {
    gateway = await startGateway({
      CHAIN_ID: '8453',
      DEPLOYMENT_BLOCK: '1234',
      PUBLIC_RPC_URL: 'https://rpc.example/v1',
    });
    const response = await gateway.app.fastify.inject({ method: 'GET', url: '/v1/info' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const body = response.json();
    expect(Value.Check(InfoResponse, body)).toBe(true);
    expect(body).toEqual({
      protocol: PROTOCOL_VERSION,
      protocols: [...PROTOCOL_VERSIONS],
      chainId: 8453,
      contract: TEST_CONTRACT,
      deploymentBlock: 1234,
      rpcUrl: 'https://rpc.example/v1',
      leafEncoding: [...LEAF_ENCODING],
    });
  });

  it('default: GET /healthz is ok while Redis answers', async () => {
    gateway = await startGateway();
    const response = await gateway.app.fastify.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok', redis: 'ok' });
  });

  it('error: GET /healthz is 503 when Redis is down', async () => {
    // A real client pointed at a port where no Redis listens.
    const port = await getFreePort();
    const deadRedis = new Redis(`redis://127.0.0.1:${port}`, {
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    deadRedis.on('error', () => {});
    gateway = await startGateway({}, { redis: deadRedis });
    try {
      const response = await gateway.app.fastify.inject({ method: 'GET', url: '/healthz' });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toEqual({ status: 'unavailable', redis: 'down' });
    } finally {
      deadRedis.disconnect();
    }
  });
});
