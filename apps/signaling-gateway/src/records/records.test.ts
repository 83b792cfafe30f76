import { createQueue } from '@streamanchor/bus';
import { verifyReceiptProof } from '@streamanchor/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  expectProblem,
  type FakeIndexer,
  startFakeIndexer,
  startGateway,
  type TestGateway,
  testReceipt,
} from '../../test/support';
import { INDEXER_RETRY_AFTER_SECONDS, RECEIPT_PENDING_RETRY_AFTER_SECONDS } from './index';

const RECORD_ID = `0x${'a1'.repeat(32)}`;

describe('GET /v1/records/:recordId/receipt', () => {
  let gateway: TestGateway;
  let indexer: FakeIndexer | undefined;

  afterEach(async () => {
    await indexer?.close();
    indexer = undefined;
    await gateway.close();
  });

  async function setup(overrides: Record<string, string> = {}) {
    gateway = await startGateway(overrides);
    indexer = await startFakeIndexer(gateway);
    return indexer;
  }

  const get = async (
    recordId: string,
    { token, headers = {} }: { token?: string | null; headers?: Record<string, string> } = {},
  ) => {
    const bearer = token === undefined ? await gateway.token() : token;
    return gateway.app.fastify.inject({
      method: 'GET',
      url: `/v1/records/${recordId}/receipt`,
      headers: { ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }), ...headers },
    });
  };

  it('default: an anchored record of the token subject is 200 with its receipt', async () => {
    const fake = await setup();
    const receipt = testReceipt({ recordId: RECORD_ID as `0x${string}` });
    fake.records.set(RECORD_ID, { state: 'anchored', subject: 'alice', receipt });

    const response = await get(RECORD_ID);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json(;|$)/);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = JSON.parse(response.body);
    expect(body).toEqual(receipt);
    expect(verifyReceiptProof(body)).toBe(true);

    // One lookup job per request, each with its own id.
    await get(RECORD_ID);
    expect(fake.jobs.map((job) => job.data)).toEqual([
      { recordId: RECORD_ID },
      { recordId: RECORD_ID },
    ]);
    const [first, second] = fake.jobs.map((job) => job.id);
    expect(first).toMatch(new RegExp(`^lookup-${RECORD_ID}-[0-9a-f]+$`));
    expect(second).not.toBe(first);
  });

  it('behavior: a final receipt keeps its status and confirmations', async () => {
    const fake = await setup();
    const receipt = testReceipt({ status: 'final', confirmations: 64, revision: 2 });
    fake.records.set(RECORD_ID, { state: 'anchored', subject: 'alice', receipt });
    const response = await get(RECORD_ID);
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({
      status: 'final',
      confirmations: 64,
      revision: 2,
    });
  });

  it('behavior: a stored record not anchored yet is 404 receipt_pending with Retry-After', async () => {
    const fake = await setup();
    fake.records.set(RECORD_ID, { state: 'pending', subject: 'alice' });
    const response = await get(RECORD_ID);
    expectProblem(response, 'receipt_pending');
    expect(response.headers['retry-after']).toBe(String(RECEIPT_PENDING_RETRY_AFTER_SECONDS));
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it("behavior: another subject's record looks exactly like an unknown one (404 record_not_found)", async () => {
    const fake = await setup();
    const unknownId = `0x${'0f'.repeat(32)}`;
    const bobsId = `0x${'b0'.repeat(32)}`;
    const pendingId = `0x${'c0'.repeat(32)}`;
    fake.records.set(bobsId, {
      state: 'anchored',
      subject: 'bob',
      receipt: testReceipt({ recordId: bobsId as `0x${string}`, subject: 'bob' }),
    });
    fake.records.set(pendingId, { state: 'pending', subject: 'bob' });

    const unknown = await get(unknownId);
    const others = await get(bobsId);
    const othersPending = await get(pendingId);
    const bodies = [unknown, others, othersPending].map((response) => {
      const body = expectProblem(response, 'record_not_found');
      expect(response.headers['retry-after']).toBeUndefined();
      return { ...body, detail: String(body.detail).replace(/0x[0-9a-f]{64}/, '<id>') };
    });
    expect(bodies[1]).toEqual(bodies[0]);
    expect(bodies[2]).toEqual(bodies[0]);

    // Bob himself sees his receipt.
    const asBob = await get(bobsId, { token: await gateway.token({ subject: 'bob' }) });
    expect(asBob.statusCode).toBe(200);
  });

  it('behavior: CORS headers as on the other routes, preflight answered', async () => {
    const fake = await setup({ CORS_ORIGINS: 'https://app.example' });
    fake.records.set(RECORD_ID, { state: 'anchored', subject: 'alice', receipt: testReceipt() });
    const response = await get(RECORD_ID, { headers: { origin: 'https://app.example' } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBe('https://app.example');
    const preflight = await gateway.app.fastify.inject({
      method: 'OPTIONS',
      url: `/v1/records/${RECORD_ID}/receipt`,
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-methods']).toMatch(/\bGET\b/);
    expect(preflight.headers['access-control-allow-headers']).toMatch(/Authorization/);
  });

  it('error: a record id that is not 0x + 64 lowercase hex is 400 bad_request', async () => {
    const fake = await setup();
    for (const bad of [
      RECORD_ID.toUpperCase().replace('0X', '0x'),
      RECORD_ID.slice(0, 65),
      `${RECORD_ID}00`,
      RECORD_ID.slice(2),
      'not-an-id',
    ]) {
      expectProblem(await get(bad), 'bad_request');
    }
    expect(fake.jobs).toHaveLength(0);
  });

  it('error: no token or a bad token is 401 unauthorized, before the id is looked at', async () => {
    const fake = await setup();
    const none = await get(RECORD_ID, { token: null });
    expectProblem(none, 'unauthorized');
    expect(none.headers['www-authenticate']).toBe('Bearer');
    const badIdNoToken = await get('nope', { token: null });
    expectProblem(badIdNoToken, 'unauthorized');
    const garbage = await get(RECORD_ID, { token: 'not-a-jwt' });
    expectProblem(garbage, 'unauthorized');
    expect(garbage.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect(fake.jobs).toHaveLength(0);
  });

  it('error: no indexer answering is 503 indexer_unavailable with Retry-After, and no job lingers', async () => {
    gateway = await startGateway({ LOOKUP_TIMEOUT_MS: '300' });
    const response = await get(RECORD_ID);
    expectProblem(response, 'indexer_unavailable');
    expect(response.headers['retry-after']).toBe(String(INDEXER_RETRY_AFTER_SECONDS));
    const queue = createQueue({ connection: gateway.redis, keys: gateway.keys }, 'indexerLookup');
    try {
      const counts = await queue.getJobCounts();
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
    } finally {
      await queue.close();
    }
  });

  it('error: an unusable indexer answer is 500 internal_error (never passed on)', async () => {
    gateway = await startGateway();
    indexer = await startFakeIndexer(gateway, {
      process: async () => ({ state: 'anchored', subject: 'alice', receipt: { nope: true } }),
    });
    expectProblem(await get(RECORD_ID), 'internal_error');
  });
});
