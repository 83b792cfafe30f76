import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { IndexerClient } from '@streamanchor/bus';
import { Bytes32, Receipt, type TokenClaims } from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { FastifyRequest } from 'fastify';
import type { Authenticate } from '../auth';
import { ProblemError, problemResponses } from '../errors';
import { INDEXER_RETRY_AFTER_SECONDS, indexerProblem } from '../indexer-problem';

/** Seconds a client should wait before asking again for a receipt that is still pending. */
export const RECEIPT_PENDING_RETRY_AFTER_SECONDS = 5;
export { INDEXER_RETRY_AFTER_SECONDS };

export interface RecordsOptions {
  authenticate: Authenticate;
  indexer: Pick<IndexerClient, 'lookupReceipt'>;
  logger: Logger;
}

/**
 * GET /v1/records/<recordId>/receipt: a record's current receipt, for clients whose
 * session ended before it arrived over the channel. The gateway keeps no state: it asks
 * the chain-indexer (request/reply over BullMQ), which reads the batch ledger.
 *
 * Order of checks: bearer token (401), record id (400), the indexer's answer (503 when
 * it does not come in time), then the subject: another subject's record looks exactly
 * like a missing one (404 record_not_found), so existence never leaks.
 */
export const recordsRoutes: FastifyPluginAsyncTypebox<RecordsOptions> = async (app, options) => {
  const { authenticate, indexer, logger } = options;
  const claimsByRequest = new WeakMap<FastifyRequest, TokenClaims>();

  app.addHook('onSend', async (_request, reply) => {
    reply.header('Cache-Control', 'no-store');
  });

  app.get(
    '/v1/records/:recordId/receipt',
    {
      // The token is checked before the parameters: no token, no hints about ids.
      onRequest: async (request) => {
        claimsByRequest.set(request, await authenticate(request));
      },
      schema: {
        summary: "A record's current receipt (status included or final)",
        params: Type.Object({ recordId: Bytes32 }),
        response: {
          200: Receipt,
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const claims = claimsByRequest.get(request);
      if (!claims) throw new Error('route is missing its authenticate hook');
      const { recordId } = request.params;

      let lookup: Awaited<ReturnType<IndexerClient['lookupReceipt']>>;
      try {
        lookup = await indexer.lookupReceipt(recordId);
      } catch (error) {
        throw indexerProblem(error, logger, { recordId });
      }

      // Someone else's record looks exactly like a missing one.
      if (lookup.state === 'unknown' || lookup.subject !== claims.sub) {
        throw new ProblemError('record_not_found', `No record ${recordId} of yours is stored`);
      }
      if (lookup.state === 'pending') {
        throw new ProblemError(
          'receipt_pending',
          'The record is stored; its batch is not anchored in a canonical block yet. Retry later',
          { headers: { 'Retry-After': String(RECEIPT_PENDING_RETRY_AFTER_SECONDS) } },
        );
      }
      return reply.code(200).type('application/json').send(lookup.receipt);
    },
  );
};
