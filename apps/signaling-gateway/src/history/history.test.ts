import type { TypedJob } from '@streamanchor/bus';
import {
  AUDIT_TOPIC,
  type BatchByIdResult,
  type BatchLeaf,
  buildMerkleTree,
  contentHashOf,
  type Hex,
  HISTORY_LIMITS,
  leafHash,
  type ReceiptAnchor,
  type StoredRecord,
  type TopicHistoryRecord,
  verifyReceiptProof,
} from '@streamanchor/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  expectProblem,
  type FakeIndexer,
  startFakeIndexer,
  startGateway,
  TEST_CONTRACT,
  type TestGateway,
} from '../../test/support';
import { INDEXER_RETRY_AFTER_SECONDS } from '../indexer-problem';
import { BATCH_PENDING_RETRY_AFTER_SECONDS } from './index';

const hex32 = (byte: string) => `0x${byte.repeat(32)}` as Hex;
const BATCH_ID = hex32('b2');

/** Record `n` of `topic` at `position`, with its canonical payload. */
function historyRecord(n: number, position: number, batchId: Hex | null = null) {
  const payload = JSON.stringify({ n });
  return {
    position,
    recordId: `0x${n.toString(16).padStart(64, '0')}` as Hex,
    subject: 'alice',
    contentHash: contentHashOf(payload),
    acceptedAt: 1_764_000_000_000 + n,
    payload,
    batchId,
  } satisfies TopicHistoryRecord;
}

/** Stored records of `demo` at positions 1..5. */
const DEMO = [1, 2, 3, 4, 5].map((n) => historyRecord(n, n));

/**
 * STANDS IN FOR the chain-indexer's lookups (apps/chain-indexer/src/lookup tests them over a
 * real database): `topicRecords` pages DEMO (topic `demo`) by position; the rest answer what
 * the test puts in `answers`.
 */
function scriptedLookups(answers: { record?: StoredRecord | null; batch?: BatchByIdResult } = {}) {
  return async (job: TypedJob<'indexerLookup'>) => {
    if (job.name === 'topicRecords') {
      const { topic, after, limit } = job.data as { topic: string; after: number; limit: number };
      const records = topic === 'demo' ? DEMO : [];
      return {
        records: records.filter((r) => r.position > after).slice(0, limit),
        head: records.at(-1)?.position ?? 0,
      };
    }
    if (job.name === 'recordById') return { record: answers.record ?? null };
    if (job.name === 'batchById') return answers.batch ?? { state: 'unknown' };
    throw new Error(`unexpected lookup ${job.name}`);
  };
}

/** A real three-leaf batch (topics demo, chat, _audit) anchored in block 12, with its proofs. */
async function anchoredBatch() {
  const records = [
    { topic: 'demo', n: 11, position: 6 },
    { topic: 'chat', n: 12, position: 1 },
    { topic: AUDIT_TOPIC, n: 13, position: null },
  ].map(({ topic, n, position }) => {
    const payload = JSON.stringify({ n });
    return {
      recordId: `0x${n.toString(16).padStart(64, '0')}` as Hex,
      topic,
      subject: topic === AUDIT_TOPIC ? 'streamanchor-audit' : 'alice',
      contentHash: contentHashOf(payload),
      acceptedAt: 1_764_000_000_000 + n,
      position,
      payload,
    };
  });
  const tree = await buildMerkleTree(records);
  const anchor: ReceiptAnchor = {
    status: 'final',
    confirmations: 14,
    revision: 2,
    batchId: BATCH_ID,
    merkleRoot: tree.root,
    recordCount: records.length,
    chainId: 31337,
    contract: TEST_CONTRACT.toLowerCase() as Hex,
    txHash: hex32('c3'),
    blockNumber: 12,
    blockHash: hex32('d4'),
    logIndex: 0,
  };
  const leaves: BatchLeaf[] = records.map((record, leafIndex) => ({
    leafIndex,
    recordId: record.recordId,
    topic: record.topic,
    subject: record.subject,
    contentHash: record.contentHash,
    acceptedAt: record.acceptedAt,
    leafHash: tree.leafHashes[leafIndex]!,
    proof: tree.proof(leafIndex),
    position: record.position,
    payload: record.payload,
  }));
  return { anchor, leaves };
}

describe('history over HTTP', () => {
  let gateway: TestGateway;
  let indexer: FakeIndexer | undefined;

  afterEach(async () => {
    await indexer?.close();
    indexer = undefined;
    await gateway.close();
  });

  async function setup(
    answers: Parameters<typeof scriptedLookups>[0] = {},
    overrides: Record<string, string> = {},
  ) {
    gateway = await startGateway(overrides);
    indexer = await startFakeIndexer(gateway, { process: scriptedLookups(answers) });
    return indexer;
  }

  /** A subscriber of `demo` (and publisher of demo and telemetry), unless told otherwise. */
  const subscriber = (subscribe: string[] = ['demo'], subject = 'alice') =>
    gateway.token({ subject, subscribe });

  const get = async (
    url: string,
    {
      token,
      headers = {},
      remoteAddress,
    }: { token?: string | null; headers?: Record<string, string>; remoteAddress?: string } = {},
  ) => {
    const bearer = token === undefined ? await subscriber() : token;
    return gateway.app.fastify.inject({
      method: 'GET',
      url,
      ...(remoteAddress ? { remoteAddress } : {}),
      headers: { ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }), ...headers },
    });
  };

  describe('GET /v1/topics/:topic/records', () => {
    it('default: a subscriber gets a page of the topic’s records after a position, with next and head', async () => {
      const fake = await setup();
      const response = await get('/v1/topics/demo/records?after=1&limit=2');
      expect(response.statusCode, response.body).toBe(200);
      expect(response.headers['content-type']).toMatch(/^application\/json(;|$)/);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(JSON.parse(response.body)).toEqual({
        topic: 'demo',
        records: DEMO.slice(1, 3),
        next: 3,
        head: 5,
      });
      expect(fake.jobs.map((job) => [job.name, job.data])).toEqual([
        ['topicRecords', { topic: 'demo', after: 1, limit: 2 }],
      ]);
      expect(fake.jobs[0]!.id).toMatch(/^topic-records-demo-[0-9a-f]+$/);
    });

    it('behavior: following next page by page reads every record once, and the last page says next null', async () => {
      await setup();
      const seen: number[] = [];
      let after: number | null = 0;
      let pages = 0;
      while (after !== null) {
        const body = JSON.parse((await get(`/v1/topics/demo/records?after=${after}&limit=2`)).body);
        seen.push(...body.records.map((r: TopicHistoryRecord) => r.position));
        after = body.next;
        pages += 1;
      }
      expect(seen).toEqual([1, 2, 3, 4, 5]);
      expect(pages).toBe(3);
      // Caught up: an empty page, next null, the head to resume after.
      expect(JSON.parse((await get('/v1/topics/demo/records?after=5')).body)).toEqual({
        topic: 'demo',
        records: [],
        next: null,
        head: 5,
      });
      expect(
        JSON.parse(
          (await get('/v1/topics/quiet/records', { token: await subscriber(['*']) })).body,
        ),
      ).toMatchObject({
        records: [],
        next: null,
        head: 0,
      });
    });

    it('behavior: without after and limit, from the first record, HISTORY_LIMITS.defaultPageRecords at most; * grants every topic', async () => {
      const fake = await setup();
      const response = await get('/v1/topics/demo/records', { token: await subscriber(['*']) });
      expect(response.statusCode).toBe(200);
      expect(JSON.parse(response.body)).toMatchObject({ records: DEMO, next: null, head: 5 });
      expect(fake.jobs[0]!.data).toEqual({
        topic: 'demo',
        after: 0,
        limit: HISTORY_LIMITS.defaultPageRecords,
      });
    });

    it('behavior: a payload pruned by retention comes as null (the leaf fields stay)', async () => {
      gateway = await startGateway();
      const pruned = { ...historyRecord(1, 1, BATCH_ID), payload: null };
      indexer = await startFakeIndexer(gateway, {
        process: async () => ({ records: [pruned], head: 1 }),
      });
      expect(JSON.parse((await get('/v1/topics/demo/records')).body).records).toEqual([pruned]);
    });

    it('error: a topic the token does not subscribe to is 403 topic_not_allowed, and the indexer is not asked', async () => {
      const fake = await setup();
      for (const token of [
        await gateway.token({ topics: ['demo'] }), // publishes to demo, subscribes to nothing
        await subscriber(['chat']),
      ]) {
        const response = await get('/v1/topics/demo/records', { token });
        expect(expectProblem(response, 'topic_not_allowed').detail).toBe(
          'The token\'s subscribe claim does not grant the topic "demo"',
        );
        expect(response.headers['cache-control']).toBe('no-store');
      }
      expect(fake.jobs).toHaveLength(0);
    });

    it('error: a bad topic, after or limit is 400 bad_request', async () => {
      const fake = await setup();
      for (const url of [
        '/v1/topics/Demo/records',
        `/v1/topics/${AUDIT_TOPIC}/records`,
        '/v1/topics/demo/records?after=-1',
        '/v1/topics/demo/records?after=1.5',
        '/v1/topics/demo/records?after=soon',
        '/v1/topics/demo/records?limit=0',
        `/v1/topics/demo/records?limit=${HISTORY_LIMITS.maxPageRecords + 1}`,
      ]) {
        expectProblem(await get(url, { token: await subscriber(['*']) }), 'bad_request');
      }
      expect(fake.jobs).toHaveLength(0);
    });
  });

  describe('GET /v1/records/:recordId', () => {
    const stored = (topic: string, position: number | null = 3): StoredRecord => {
      const { batchId: _, ...record } = historyRecord(3, position ?? 0, BATCH_ID);
      return { ...record, topic, position, batchId: BATCH_ID };
    };

    it('default: a record of a subscribed topic is 200 with its topic, position, batch and payload', async () => {
      const record = stored('demo');
      const fake = await setup({ record });
      const response = await get(`/v1/records/${record.recordId}`);
      expect(response.statusCode, response.body).toBe(200);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(JSON.parse(response.body)).toEqual(record);
      expect(fake.jobs.map((job) => [job.name, job.data])).toEqual([
        ['recordById', { recordId: record.recordId }],
      ]);
    });

    it("behavior: a record of a topic not granted (the audit log's included) looks exactly like an unknown one (404 record_not_found)", async () => {
      const chat = stored('chat');
      const audit = { ...stored(AUDIT_TOPIC, null), subject: 'streamanchor-audit' };
      // The fake indexer reads `answers` at each request.
      const answers: { record?: StoredRecord | null } = {};
      await setup(answers);
      const cases: [StoredRecord | null, string][] = [
        [null, await subscriber(['*'])],
        [chat, await subscriber(['demo'])],
        [chat, await gateway.token({ topics: ['chat'] })], // publishes to chat, subscribes to none
        [audit, await subscriber(['*'])],
      ];
      const bodies: unknown[] = [];
      for (const [record, token] of cases) {
        answers.record = record;
        const response = await get(`/v1/records/${chat.recordId}`, { token });
        bodies.push(expectProblem(response, 'record_not_found'));
        expect(response.headers['retry-after']).toBeUndefined();
      }
      for (const body of bodies) expect(body).toEqual(bodies[0]);
      // The subscriber of chat sees it.
      answers.record = chat;
      const granted = await get(`/v1/records/${chat.recordId}`, {
        token: await subscriber(['chat']),
      });
      expect(granted.statusCode).toBe(200);
    });

    it('error: a record id that is not 0x + 64 lowercase hex is 400 bad_request', async () => {
      const fake = await setup();
      for (const bad of [hex32('AB'), hex32('ab').slice(0, 65), 'not-an-id']) {
        expectProblem(await get(`/v1/records/${bad}`), 'bad_request');
      }
      expect(fake.jobs).toHaveLength(0);
    });
  });

  describe('GET /v1/batches/:batchId', () => {
    it('default: any token reads an anchored batch: its anchoring and every leaf with its proof; payloads only of subscribed topics', async () => {
      const { anchor, leaves } = await anchoredBatch();
      const fake = await setup({ batch: { state: 'anchored', anchor, leaves, next: null } });
      const response = await get(`/v1/batches/${BATCH_ID}`, { token: await subscriber(['demo']) });
      expect(response.statusCode, response.body).toBe(200);
      expect(response.headers['cache-control']).toBe('no-store');
      const body = JSON.parse(response.body);
      expect(body).toEqual({
        anchor,
        leaves: [leaves[0], { ...leaves[1], payload: null }, { ...leaves[2], payload: null }],
        next: null,
      });
      // Only the token's subscribe grants are asked for.
      expect(fake.jobs.map((job) => [job.name, job.data])).toEqual([
        ['batchById', { batchId: BATCH_ID, from: 0, limit: 100, payloadTopics: ['demo'] }],
      ]);
      // What a verifier does: each leaf is its fields' hash and proves against the root.
      for (const leaf of body.leaves as BatchLeaf[]) {
        expect(leafHash(leaf)).toBe(leaf.leafHash);
        expect(verifyReceiptProof({ ...anchor, ...leaf })).toBe(true);
      }
      expect(contentHashOf(body.leaves[0].payload)).toBe(body.leaves[0].contentHash);
    });

    it('behavior: a token that subscribes to nothing still reads every leaf, without payloads; * does not grant the audit log’s', async () => {
      const { anchor, leaves } = await anchoredBatch();
      const fake = await setup({ batch: { state: 'anchored', anchor, leaves, next: null } });
      const publisher = await gateway.token({ topics: ['demo'] });
      const none = JSON.parse((await get(`/v1/batches/${BATCH_ID}`, { token: publisher })).body);
      expect(none.leaves).toEqual(leaves.map((leaf) => ({ ...leaf, payload: null })));
      expect(fake.jobs[0]!.data).toMatchObject({ payloadTopics: [] });

      const all = JSON.parse(
        (await get(`/v1/batches/${BATCH_ID}`, { token: await subscriber(['*']) })).body,
      );
      expect(all.leaves.map((leaf: BatchLeaf) => leaf.payload)).toEqual([
        leaves[0]!.payload,
        leaves[1]!.payload,
        null,
      ]);
    });

    it('behavior: pages pass from and limit through, and next says where the next page starts', async () => {
      const { anchor, leaves } = await anchoredBatch();
      const fake = await setup({
        batch: { state: 'anchored', anchor, leaves: leaves.slice(1, 2), next: 2 },
      });
      const body = JSON.parse((await get(`/v1/batches/${BATCH_ID}?from=1&limit=1`)).body);
      expect(body.leaves.map((leaf: BatchLeaf) => leaf.leafIndex)).toEqual([1]);
      expect(body.next).toBe(2);
      expect(fake.jobs[0]!.data).toMatchObject({ from: 1, limit: 1 });
    });

    it('error: an unknown batch is 404 batch_not_found', async () => {
      await setup({ batch: { state: 'unknown' } });
      const response = await get(`/v1/batches/${BATCH_ID}`);
      expect(expectProblem(response, 'batch_not_found').detail).toBe(
        `No batch ${BATCH_ID} is stored`,
      );
      expect(response.headers['retry-after']).toBeUndefined();
    });

    it('error: a batch built or sent but not anchored is 404 batch_pending with Retry-After', async () => {
      await setup({ batch: { state: 'pending', status: 'sent' } });
      const response = await get(`/v1/batches/${BATCH_ID}`);
      expect(expectProblem(response, 'batch_pending').detail).toMatch(/^The batch is sent;/);
      expect(response.headers['retry-after']).toBe(String(BATCH_PENDING_RETRY_AFTER_SECONDS));
    });

    it('error: a bad batch id, from or limit is 400 bad_request', async () => {
      const fake = await setup();
      for (const url of [
        '/v1/batches/0x1234',
        `/v1/batches/${BATCH_ID}?from=-1`,
        `/v1/batches/${BATCH_ID}?limit=0`,
        `/v1/batches/${BATCH_ID}?limit=${HISTORY_LIMITS.maxPageRecords + 1}`,
      ]) {
        expectProblem(await get(url), 'bad_request');
      }
      expect(fake.jobs).toHaveLength(0);
    });
  });

  describe('every history route', () => {
    const urls = [
      '/v1/topics/demo/records',
      `/v1/records/${hex32('a1')}`,
      `/v1/batches/${BATCH_ID}`,
    ];

    it('error: no token or a bad one is 401 unauthorized, before the path is looked at', async () => {
      const fake = await setup();
      for (const url of [...urls, '/v1/topics/BAD/records', '/v1/batches/nope']) {
        expect((await get(url, { token: null })).headers['www-authenticate']).toBe('Bearer');
        expectProblem(await get(url, { token: null }), 'unauthorized');
        expectProblem(await get(url, { token: 'not-a-jwt' }), 'unauthorized');
      }
      expect(fake.jobs).toHaveLength(0);
    });

    it('error: no indexer answering is 503 indexer_unavailable with Retry-After', async () => {
      gateway = await startGateway({ LOOKUP_TIMEOUT_MS: '300' });
      for (const url of urls) {
        const response = await get(url);
        expectProblem(response, 'indexer_unavailable');
        expect(response.headers['retry-after']).toBe(String(INDEXER_RETRY_AFTER_SECONDS));
      }
    });

    it('error: an unusable indexer answer is 500 internal_error (never passed on)', async () => {
      gateway = await startGateway();
      indexer = await startFakeIndexer(gateway, {
        process: async () => ({ records: [{ nope: true }], head: -1, record: 7, state: 'x' }),
      });
      for (const url of urls) expectProblem(await get(url), 'internal_error');
    });

    it('error: more reads per subject than HISTORY_RATE_PER_SUBJECT is 429 rate_limited with Retry-After; other subjects and the session limits are not affected', async () => {
      await setup({}, { HISTORY_RATE_PER_SUBJECT: '3', HISTORY_RATE_WINDOW_MS: '60000' });
      const token = await subscriber(['demo'], 'reader');
      for (const url of urls.slice(0, 3)) {
        expect((await get(url, { token })).statusCode).not.toBe(429);
      }
      for (const url of urls) {
        const response = await get(url, { token });
        expect(expectProblem(response, 'rate_limited').detail).toMatch(
          /^At most 3 history reads per subject every 60 s; retry in (59|60) s$/,
        );
        expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
      }
      expect((await get(urls[0]!, { token: await subscriber(['demo'], 'other') })).statusCode).toBe(
        200,
      );
      // Counted under keys of their own, in Redis under the deployment's prefix.
      const counters = await gateway.redis.keys(`${gateway.prefix}:rate-limit:*`);
      expect(counters.some((key) => key.includes('history-sub:'))).toBe(true);
      expect(counters.some((key) => /:(ip|sub):/.test(key))).toBe(false);
    });

    it('error: more reads per client address than HISTORY_RATE_PER_IP is 429, even without a token', async () => {
      await setup({}, { HISTORY_RATE_PER_IP: '2' });
      expect((await get(urls[0]!, { remoteAddress: '203.0.113.9' })).statusCode).toBe(200);
      expect((await get(urls[0]!, { remoteAddress: '203.0.113.9' })).statusCode).toBe(200);
      for (const token of [await subscriber(), null]) {
        const response = await get(urls[0]!, { token, remoteAddress: '203.0.113.9' });
        expect(expectProblem(response, 'rate_limited').detail).toMatch(
          /^At most 2 history reads per client address every 60 s/,
        );
      }
      expect((await get(urls[0]!, { remoteAddress: '198.51.100.2' })).statusCode).toBe(200);
    });

    it('behavior: CORS headers as on the other routes, preflight answered', async () => {
      await setup({}, { CORS_ORIGINS: 'https://app.example' });
      const response = await get(urls[0]!, { headers: { origin: 'https://app.example' } });
      expect(response.statusCode).toBe(200);
      expect(response.headers['access-control-allow-origin']).toBe('https://app.example');
      const preflight = await gateway.app.fastify.inject({
        method: 'OPTIONS',
        url: urls[2]!,
        headers: {
          origin: 'https://app.example',
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'authorization',
        },
      });
      expect(preflight.statusCode).toBe(204);
      expect(preflight.headers['access-control-allow-methods']).toMatch(/\bGET\b/);
    });
  });
});
