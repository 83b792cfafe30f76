import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AuditPublisher, IndexerClient } from '@streamanchor/bus';
import {
  BatchResponse,
  Bytes32,
  HISTORY_LIMITS,
  RecordResponse,
  subscribeAllowed,
  type TokenClaims,
  Topic,
  TopicPosition,
  TopicRecordsResponse,
} from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { FastifyRequest } from 'fastify';
import type { Authenticate } from '../auth';
import { BoundedCache } from '../bounded-cache';
import { ProblemError, problemResponses } from '../errors';
import { indexerProblem } from '../indexer-problem';
import { createRequestLimit, RATE_LIMIT_CACHE_ENTRIES } from '../rate-limit';

/** Seconds a client should wait before asking again for a batch that is not anchored yet. */
export const BATCH_PENDING_RETRY_AFTER_SECONDS = 5;

export interface HistoryLimits {
  /** History reads per client address per window. */
  perIp: number;
  /** History reads per token subject per window. */
  perSubject: number;
  windowMs: number;
}

export interface HistoryOptions {
  authenticate: Authenticate;
  indexer: Pick<IndexerClient, 'topicRecords' | 'recordById' | 'batchById'>;
  logger: Logger;
  limits: HistoryLimits;
  /** Where rate_limited audit events go (none: not audited). */
  audit?: Pick<AuditPublisher, 'record'>;
}

/** `limit` of a page: 1 to HISTORY_LIMITS.maxPageRecords, HISTORY_LIMITS.defaultPageRecords by default. */
const PageLimit = Type.Integer({
  minimum: 1,
  maximum: HISTORY_LIMITS.maxPageRecords,
  default: HISTORY_LIMITS.defaultPageRecords,
  description: `most records (leaves) in the page, 1–${HISTORY_LIMITS.maxPageRecords}`,
});

/**
 * History over HTTP (docs/protocol.md §3.8–3.10), read from the chain-indexer (request/reply
 * over BullMQ; the gateway keeps no state):
 * - GET /v1/topics/<topic>/records?after=&limit=: a topic's stored records after a position,
 *   paged; the token's `subscribe` must grant the topic (else 403 topic_not_allowed);
 * - GET /v1/records/<recordId>: one record, if its topic is granted (a record of another topic
 *   looks exactly like a missing one: 404 record_not_found);
 * - GET /v1/batches/<batchId>?from=&limit=: an anchored batch's anchoring and a page of ALL its
 *   leaves with proofs (leaf fields are public commitments: a verifier needs every leaf to
 *   rebuild the root), with payloads only for the topics the token subscribes to.
 *
 * Order of checks: rate limit per client address (429), bearer token (401), rate limit per
 * subject (429), path and query (400), the grant (403, topics only), the indexer's answer
 * (503 when it does not come in time), then 404s.
 */
export const historyRoutes: FastifyPluginAsyncTypebox<HistoryOptions> = async (app, options) => {
  const { authenticate, indexer, logger, limits, audit } = options;
  const claimsByRequest = new WeakMap<FastifyRequest, TokenClaims>();
  const claimsOf = (request: FastifyRequest): TokenClaims => {
    const claims = claimsByRequest.get(request);
    if (!claims) throw new Error('route is missing the requireToken hook');
    return claims;
  };
  const requireToken = async (request: FastifyRequest) => {
    claimsByRequest.set(request, await authenticate(request));
  };

  // Counted in Redis under REDIS_PREFIX (shared by every gateway), with keys of their own:
  // history reads never use up a client's session limits.
  const auditRateLimited = (request: FastifyRequest, limit: string) =>
    audit?.record({
      kind: 'rate_limited',
      address: request.ip,
      ...(claimsByRequest.get(request) && { subject: claimsByRequest.get(request)!.sub }),
      details: { limit },
    });
  const exceeded = new BoundedCache<true>(RATE_LIMIT_CACHE_ENTRIES);
  const limitPerIp = createRequestLimit(app, {
    max: limits.perIp,
    windowMs: limits.windowMs,
    keyOf: (request) => `history-ip:${request.ip}`,
    counted: 'history reads',
    per: 'client address',
    onLimited: (request) => auditRateLimited(request, 'history reads per client address'),
    exceeded,
  });
  const limitPerSubject = createRequestLimit(app, {
    max: limits.perSubject,
    windowMs: limits.windowMs,
    keyOf: (request) => `history-sub:${Buffer.from(claimsOf(request).sub).toString('base64url')}`,
    counted: 'history reads',
    per: 'subject',
    onLimited: (request) => auditRateLimited(request, 'history reads per subject'),
    exceeded,
  });
  // The token is checked before the parameters: no token, no hints about ids.
  const onRequest = [limitPerIp, requireToken, limitPerSubject];

  // Answers depend on the bearer's grants, and payloads may be pruned later.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('Cache-Control', 'no-store');
  });

  app.get(
    '/v1/topics/:topic/records',
    {
      onRequest,
      schema: {
        summary: "A page of a topic's stored records after a position, in position order",
        params: Type.Object({ topic: Topic }),
        querystring: Type.Object({
          after: Type.Optional(
            Type.Integer({
              minimum: 0,
              maximum: TopicPosition.maximum,
              default: 0,
              description: 'the last position the reader has; 0: from the first record',
            }),
          ),
          limit: Type.Optional(PageLimit),
        }),
        response: { 200: TopicRecordsResponse, ...problemResponses },
      },
    },
    async (request, reply) => {
      const claims = claimsOf(request);
      const { topic } = request.params;
      const { after = 0, limit = HISTORY_LIMITS.defaultPageRecords } = request.query;
      if (!subscribeAllowed(claims, topic)) {
        throw new ProblemError(
          'topic_not_allowed',
          `The token's subscribe claim does not grant the topic "${topic}"`,
        );
      }
      let page: Awaited<ReturnType<IndexerClient['topicRecords']>>;
      try {
        page = await indexer.topicRecords(topic, after, limit);
      } catch (error) {
        throw indexerProblem(error, logger, { topic, after, limit });
      }
      // Where the page ended; more records are stored after it while that is below the head.
      const end = page.records.at(-1)?.position ?? after;
      return reply.code(200).send({
        topic,
        records: page.records,
        next: end < page.head ? end : null,
        head: page.head,
      });
    },
  );

  app.get(
    '/v1/records/:recordId',
    {
      onRequest,
      schema: {
        summary: 'One stored record of a topic the token subscribes to',
        params: Type.Object({ recordId: Bytes32 }),
        response: { 200: RecordResponse, ...problemResponses },
      },
    },
    async (request, reply) => {
      const claims = claimsOf(request);
      const { recordId } = request.params;
      let found: Awaited<ReturnType<IndexerClient['recordById']>>;
      try {
        found = await indexer.recordById(recordId);
      } catch (error) {
        throw indexerProblem(error, logger, { recordId });
      }
      // A record of a topic not granted looks exactly like a missing one.
      if (!found.record || !subscribeAllowed(claims, found.record.topic)) {
        throw new ProblemError(
          'record_not_found',
          `No record ${recordId} of a topic you subscribe to is stored`,
        );
      }
      return reply.code(200).send(found.record);
    },
  );

  app.get(
    '/v1/batches/:batchId',
    {
      onRequest,
      schema: {
        summary:
          "An anchored batch's anchoring and a page of all its leaves with proofs (payloads of subscribed topics only)",
        params: Type.Object({ batchId: Bytes32 }),
        querystring: Type.Object({
          from: Type.Optional(
            Type.Integer({
              minimum: 0,
              maximum: 2 ** 31 - 1,
              default: 0,
              description: 'the leaf index the page starts at',
            }),
          ),
          limit: Type.Optional(PageLimit),
        }),
        response: { 200: BatchResponse, ...problemResponses },
      },
    },
    async (request, reply) => {
      const claims = claimsOf(request);
      const { batchId } = request.params;
      const { from = 0, limit = HISTORY_LIMITS.defaultPageRecords } = request.query;
      let found: Awaited<ReturnType<IndexerClient['batchById']>>;
      try {
        // Only the payloads the token may read travel from the indexer.
        found = await indexer.batchById(batchId, {
          from,
          limit,
          payloadTopics: claims.subscribe ?? [],
        });
      } catch (error) {
        throw indexerProblem(error, logger, { batchId, from, limit });
      }
      if (found.state === 'unknown') {
        throw new ProblemError('batch_not_found', `No batch ${batchId} is stored`);
      }
      if (found.state === 'pending') {
        throw new ProblemError(
          'batch_pending',
          `The batch is ${found.status === 'built' ? 'built' : 'sent'}; it is not anchored in a canonical block yet. Retry later`,
          { headers: { 'Retry-After': String(BATCH_PENDING_RETRY_AFTER_SECONDS) } },
        );
      }
      return reply.code(200).send({
        anchor: found.anchor,
        // Leaf fields and proofs are public; a payload only for a topic the token subscribes to.
        leaves: found.leaves.map((leaf) =>
          leaf.payload === null || subscribeAllowed(claims, leaf.topic)
            ? leaf
            : { ...leaf, payload: null },
        ),
        next: found.next,
      });
    },
  );
};
