import { randomBytes } from 'node:crypto';
import type {
  FastifyPluginAsyncTypebox,
  TypeBoxTypeProvider,
} from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  type AuditPublisher,
  jobIds,
  type RelayRegistry,
  RemoteError,
  RequestTimeoutError,
} from '@streamanchor/bus';
import {
  LIMITS,
  PROBLEMS,
  parseTrickleFragment,
  relayErrorProblem,
  SessionId,
  type TokenClaims,
  TRICKLE_ICE_SDPFRAG,
} from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { FastifyRequest } from 'fastify';
import { type Authenticate, CLOCK_TOLERANCE_SECONDS } from '../auth';
import { BoundedCache } from '../bounded-cache';
import { ProblemError, problemResponses } from '../errors';
import { createNoIceServers, type IceServerProvider, iceServerLinks } from '../ice';
import { createRequestLimit, RATE_LIMIT_CACHE_ENTRIES } from '../rate-limit';
import { createLiveRelays } from './live-relays';
import type { RelayClient } from './relay-client';
import { InvalidOfferError, sessionEtag, validateOffer } from './sdp';

export const SDP_CONTENT_TYPE = 'application/sdp';
/** PATCH /v1/sessions/<id> takes trickled candidates (RFC 8840 fragments, RFC 9725 §4.3.1). */
export const SDPFRAG_CONTENT_TYPE = TRICKLE_ICE_SDPFRAG;
/** Seconds a client should wait before retrying after a 503. */
export const RETRY_AFTER_SECONDS = 2;

export interface SessionsOptions {
  authenticate: Authenticate;
  registry: RelayRegistry;
  relays: RelayClient;
  logger: Logger;
  signalingTimeoutMs: number;
  relayStaleAfterMs: number;
  /** How long one read of the live relays is reused (0: every request reads the registry). */
  relayListCacheMs?: number;
  sessionTtlMs: number;
  limits: SessionLimits;
  /** Where session_opened, token_refused and rate_limited audit events go (none: not audited). */
  audit?: Pick<AuditPublisher, 'record'>;
  /**
   * The ICE servers announced in `Link` headers (RFC 9725 §4.6) on a 201 and on an
   * authenticated OPTIONS. Default: none.
   */
  iceServers?: IceServerProvider;
}

export interface SessionLimits {
  /** POSTs per client address per window. */
  perIp: number;
  /** POSTs per token subject per window. */
  perSubject: number;
  windowMs: number;
  /** Live sessions per subject (a token's `maxSessions` claim replaces it). */
  maxSessionsPerSubject: number;
}

/**
 * WHIP-style signaling (RFC 9725 as the model): POST an SDP offer, get the relay's answer
 * and the session's URL; PATCH the URL with trickled ICE candidates; DELETE it to end the
 * session.
 */
export const sessionsRoutes: FastifyPluginAsyncTypebox<SessionsOptions> = async (app, options) => {
  const { authenticate, registry, relays, logger } = options;
  const iceServers = options.iceServers ?? createNoIceServers();
  const liveRelays = createLiveRelays({
    registry,
    staleAfterMs: options.relayStaleAfterMs,
    cacheMs: options.relayListCacheMs ?? 0,
  });
  const claimsByRequest = new WeakMap<FastifyRequest, TokenClaims>();

  const audit = options.audit;
  const requireToken = async (request: FastifyRequest) => {
    try {
      claimsByRequest.set(request, await authenticate(request));
    } catch (error) {
      if (error instanceof ProblemError && error.code === 'unauthorized') {
        audit?.record({
          kind: 'token_refused',
          address: request.ip,
          details: { reason: error.detail ?? 'no token' },
        });
      }
      throw error;
    }
  };
  const auditRateLimited = (request: FastifyRequest, limit: string) =>
    audit?.record({
      kind: 'rate_limited',
      address: request.ip,
      ...(claimsByRequest.get(request) && { subject: claimsByRequest.get(request)!.sub }),
      details: { limit },
    });
  const claimsOf = (request: FastifyRequest): TokenClaims => {
    const claims = claimsByRequest.get(request);
    if (!claims) throw new Error('route is missing the requireToken hook');
    return claims;
  };

  // Counted in Redis under REDIS_PREFIX (shared by every gateway). Key parts are tagged
  // (ip: / sub:) and subjects base64url-encoded, so the two limits never share a counter.
  const { limits } = options;
  const ipKey = (request: FastifyRequest) => `ip:${request.ip}`;
  const subjectKey = (request: FastifyRequest) =>
    `sub:${Buffer.from(claimsOf(request).sub).toString('base64url')}`;
  // Both limits remember their refusals in one cache (their keys differ): see createRequestLimit.
  const exceeded = new BoundedCache<true>(RATE_LIMIT_CACHE_ENTRIES);
  const limitPerIp = createRequestLimit(app, {
    max: limits.perIp,
    windowMs: limits.windowMs,
    keyOf: ipKey,
    counted: 'new sessions',
    per: 'client address',
    onLimited: (request) => auditRateLimited(request, 'sessions per client address'),
    exceeded,
  });
  // An authenticated OPTIONS mints TURN credentials (a Cloudflare API call with that provider):
  // counted per address like new sessions, on a counter of its own.
  const limitIceServersPerIp = createRequestLimit(app, {
    max: limits.perIp,
    windowMs: limits.windowMs,
    keyOf: (request) => `ice-${ipKey(request)}`,
    counted: 'ICE server requests',
    per: 'client address',
    onLimited: (request) => auditRateLimited(request, 'ICE server requests per client address'),
    exceeded,
  });
  const limitPerSubject = createRequestLimit(app, {
    max: limits.perSubject,
    windowMs: limits.windowMs,
    keyOf: subjectKey,
    counted: 'new sessions',
    per: 'subject',
    onLimited: (request) => auditRateLimited(request, 'sessions per subject'),
    exceeded,
  });

  // Only SDP bodies here: any other Content-Type is refused (415) before its body is read,
  // and an SDP body is read as a string up to LIMITS.maxSdpBytes (413 beyond).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    SDP_CONTENT_TYPE,
    { parseAs: 'string', bodyLimit: LIMITS.maxSdpBytes },
    (_request, body, done) => done(null, body),
  );

  app.addHook('onSend', async (_request, reply) => {
    reply.header('Cache-Control', 'no-store');
  });

  /**
   * The `Link` header values for one session of `claims`' subject: fresh credentials that
   * expire by the time the relay ends the session (the token's exp plus the tolerance) at
   * the latest. Never rejects: without ICE servers a session can still connect directly.
   */
  const iceLinks = async (request: FastifyRequest, claims: TokenClaims): Promise<string[]> => {
    try {
      const servers = await iceServers.iceServers({
        subject: claims.sub,
        notAfter: (claims.exp + CLOCK_TOLERANCE_SECONDS) * 1000,
      });
      return iceServerLinks(servers, (url, reason) =>
        request.log.warn({ url, reason }, 'ICE server left out of the Link headers'),
      );
    } catch (error) {
      logger.warn({ err: error, provider: iceServers.kind }, 'no ICE servers for this session');
      return [];
    }
  };

  app.options(
    '/v1/sessions',
    {
      // ICE servers (with TURN credentials) only for a bearer of a valid token (RFC 9725 §4.6:
      // the OPTIONS answer MAY carry them). A CORS preflight never carries Authorization, and
      // one that did is still answered without them. A token, when sent, must be valid (401).
      onRequest: async (request) => {
        if (request.headers.authorization === undefined || isCorsPreflight(request)) return;
        // Nothing is minted without a provider: no request to count.
        if (iceServers.kind !== 'none') await limitIceServersPerIp(request);
        await requireToken(request);
      },
      schema: {
        summary: 'What POST /v1/sessions accepts, and ICE servers for a bearer of a token',
        response: {
          204: Type.Null({
            description:
              'Allow and Accept-Post headers; with Authorization, Link headers (rel="ice-server") too',
          }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const claims = claimsByRequest.get(request);
      if (claims) {
        const links = await iceLinks(request, claims);
        if (links.length > 0) reply.header('Link', links);
      }
      return reply
        .code(204)
        .header('Accept-Post', SDP_CONTENT_TYPE)
        .header('Accept-Patch', SDPFRAG_CONTENT_TYPE)
        .header('Allow', 'OPTIONS, POST')
        .send(null);
    },
  );

  app.post(
    '/v1/sessions',
    {
      bodyLimit: LIMITS.maxSdpBytes,
      // Problems are reported in this order: rate_limited (per address), unauthorized,
      // rate_limited (per subject), unsupported_media_type, payload_too_large, invalid_sdp,
      // rate_limited (live sessions per subject), no_relay_available, relay errors.
      onRequest: [limitPerIp, requireToken, limitPerSubject],
      preValidation: async (request) => {
        if (!isSdpContentType(request.headers['content-type'])) {
          const given = request.headers['content-type'];
          throw new ProblemError(
            'unsupported_media_type',
            given
              ? `Content-Type must be ${SDP_CONTENT_TYPE}, not "${given.slice(0, 100)}"`
              : `Content-Type must be ${SDP_CONTENT_TYPE}`,
            { headers: { 'Accept-Post': SDP_CONTENT_TYPE } },
          );
        }
      },
      schema: {
        summary: 'Open a session: send an SDP offer, receive the SDP answer',
        body: Type.String({
          description: 'SDP offer (application/sdp)',
          maxLength: LIMITS.maxSdpBytes,
        }),
        response: {
          201: Type.String({
            description:
              'SDP answer (application/sdp); Location names the session, ETag is its ICE ufrag',
          }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const claims = claimsOf(request);
      const offerSdp = request.body;
      try {
        validateOffer(offerSdp);
      } catch (error) {
        if (error instanceof InvalidOfferError) throw error.toProblem();
        throw error;
      }

      const sessionId = randomBytes(16).toString('base64url');
      const maxSessions = claims.maxSessions ?? limits.maxSessionsPerSubject;
      // The slot is held from now (until the relay's route replaces it, or it expires), so
      // concurrent POSTs cannot overshoot the cap.
      const slot = await registry.reserveSession(
        claims.sub,
        sessionId,
        maxSessions,
        options.signalingTimeoutMs + options.sessionTtlMs,
      );
      if (!slot.reserved && slot.suspendedMs !== undefined) {
        auditRateLimited(request, 'subject suspended');
        const retryAfter = Math.ceil(slot.suspendedMs / 1000);
        throw new ProblemError(
          'rate_limited',
          `A session of this subject was closed for sending refused messages; new sessions are refused for ${retryAfter} s more`,
          { headers: { 'Retry-After': String(retryAfter) } },
        );
      }
      if (!slot.reserved) {
        auditRateLimited(request, 'live sessions per subject');
        const retryAfter = Math.ceil(options.sessionTtlMs / 1000);
        throw new ProblemError(
          'rate_limited',
          `This subject holds ${slot.live} live sessions, the most it may (${maxSessions}); end one first`,
          { headers: { 'Retry-After': String(retryAfter) } },
        );
      }
      const release = () =>
        registry
          .releaseSession(claims.sub, sessionId)
          .catch((error: unknown) =>
            logger.warn({ err: error, sessionId }, 'could not release a session slot'),
          );

      const [relay] = await liveRelays.list();
      if (!relay) {
        await release();
        throw new ProblemError(
          'no_relay_available',
          'No relay is taking sessions right now; retry shortly',
          {
            headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) },
          },
        );
      }

      const deadline = Date.now() + options.signalingTimeoutMs;
      // Minted while the relay answers (iceLinks never rejects).
      const links = iceLinks(request, claims);
      let answerSdp: string;
      try {
        const result = await relays.createSession(
          relay.relayId,
          {
            sessionId,
            offerSdp,
            subject: claims.sub,
            topics: claims.topics,
            subscribeTopics: claims.subscribe ?? [],
            tokenExpiresAt: claims.exp * 1000,
            deadline,
          },
          jobIds.createSession(sessionId),
        );
        answerSdp = result?.answerSdp;
      } catch (error) {
        await release();
        throw relayProblem(error, { relayId: relay.relayId, sessionId, logger });
      }
      if (typeof answerSdp !== 'string' || !answerSdp.startsWith('v=0')) {
        await release();
        logger.error(
          { relayId: relay.relayId, sessionId },
          'relay answered createSession without an SDP answer',
        );
        throw new ProblemError('internal_error');
      }

      // The route (the relay has written it too) is not waited for: the 201 leaves one Redis
      // round trip sooner. Sent now on this gateway's one connection, it runs before any
      // later command of this gateway (a DELETE's lookup), and the relay's own copy of it
      // was sent before the relay answered, for DELETEs reaching another gateway.
      registry
        .setSession(
          sessionId,
          { relayId: relay.relayId, subject: claims.sub },
          options.sessionTtlMs,
        )
        .catch((error: unknown) =>
          logger.warn({ err: error, sessionId }, 'could not store the session route'),
        );
      request.log.info(
        { sessionId, relayId: relay.relayId, subject: claims.sub },
        'session created',
      );
      audit?.record({
        kind: 'session_opened',
        subject: claims.sub,
        address: request.ip,
        relayId: relay.relayId,
        sessionId,
      });

      reply
        .code(201)
        .header('Location', `/v1/sessions/${sessionId}`)
        .header('Accept-Patch', SDPFRAG_CONTENT_TYPE)
        .type(SDP_CONTENT_TYPE);
      const etag = sessionEtag(answerSdp);
      if (etag) reply.header('ETag', etag);
      const linkValues = await links;
      if (linkValues.length > 0) reply.header('Link', linkValues);
      return reply.send(answerSdp);
    },
  );

  app.delete(
    '/v1/sessions/:id',
    {
      onRequest: requireToken,
      schema: {
        summary: 'End a session',
        params: Type.Object({ id: SessionId }),
        response: { 204: Type.Null({ description: 'The session is over' }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const claims = claimsOf(request);
      const sessionId = request.params.id;
      const route = await registry.getSession(sessionId);
      // Someone else's session looks exactly like a missing one.
      if (!route || route.subject !== claims.sub) throw new ProblemError('session_not_found');

      if (!(await liveRelays.isLive(route.relayId))) {
        // The relay that held it stopped heartbeating: its sessions are gone with it.
        await registry.deleteSession(sessionId);
        request.log.info(
          { sessionId, relayId: route.relayId },
          'session dropped (its relay is gone)',
        );
        return reply.code(204).send(null);
      }

      try {
        await relays.deleteSession(
          route.relayId,
          { sessionId, deadline: Date.now() + options.signalingTimeoutMs },
          jobIds.deleteSession(sessionId, randomBytes(6).toString('hex')),
        );
      } catch (error) {
        if (!(error instanceof RemoteError))
          throw relayProblem(error, { relayId: route.relayId, sessionId, logger });
        // The relay answered (with a refusal): the route goes either way.
        // (A session the relay does not hold is no refusal: it answers { deleted: false }.)
        await registry.deleteSession(sessionId);
        throw relayProblem(error, { relayId: route.relayId, sessionId, logger });
      }
      await registry.deleteSession(sessionId);
      request.log.info({ sessionId, relayId: route.relayId }, 'session deleted');
      return reply.code(204).send(null);
    },
  );

  // Trickle ICE (RFC 9725 §4.3.1): its own scope, so that only sdpfrag bodies are parsed here
  // (and SDP only by POST). Content-Type and If-Match are checked before the body is read.
  await app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      SDPFRAG_CONTENT_TYPE,
      { parseAs: 'string', bodyLimit: LIMITS.maxSdpBytes },
      (_request, body, done) => done(null, body),
    );
    scope.patch(
      '/v1/sessions/:id',
      {
        bodyLimit: LIMITS.maxSdpBytes,
        // Problems in this order: unauthorized, bad_request (id), unsupported_media_type,
        // precondition_required, payload_too_large, invalid_sdpfrag, session_not_found, then
        // the relay's: precondition_failed, ice_restart_unsupported, invalid_sdpfrag, 503s.
        onRequest: requireToken,
        preParsing: async (request, _reply, payload) => {
          if (!isMediaType(request.headers['content-type'], SDPFRAG_CONTENT_TYPE)) {
            const given = request.headers['content-type'];
            throw new ProblemError(
              'unsupported_media_type',
              given
                ? `Content-Type must be ${SDPFRAG_CONTENT_TYPE}, not "${given.slice(0, 100)}"`
                : `Content-Type must be ${SDPFRAG_CONTENT_TYPE}`,
              { headers: { 'Accept-Patch': SDPFRAG_CONTENT_TYPE } },
            );
          }
          const ifMatch = request.headers['if-match'];
          if (ifMatch === undefined || ifMatch.trim() === '') {
            throw new ProblemError(
              'precondition_required',
              'Send If-Match with the ETag of the 201 (or "*")',
            );
          }
          return payload;
        },
        schema: {
          summary: 'Trickle ICE candidates into a session (RFC 8840 SDP fragment)',
          params: Type.Object({ id: SessionId }),
          body: Type.String({
            description: `Trickle ICE SDP fragment (${SDPFRAG_CONTENT_TYPE})`,
            maxLength: LIMITS.maxSdpBytes,
          }),
          response: {
            204: Type.Null({ description: 'The candidates were taken; ETag is the session’s' }),
            ...problemResponses,
          },
        },
      },
      async (request, reply) => {
        const claims = claimsOf(request);
        const sessionId = request.params.id;
        const fragment = parseTrickleFragment(request.body);
        if (!fragment.ok) throw new ProblemError('invalid_sdpfrag', fragment.reason);

        const route = await registry.getSession(sessionId);
        // Someone else's session looks exactly like a missing one (as for DELETE).
        if (!route || route.subject !== claims.sub) throw new ProblemError('session_not_found');
        if (!(await liveRelays.isLive(route.relayId))) throw new ProblemError('session_not_found');

        let result: Awaited<ReturnType<RelayClient['trickleSession']>>;
        try {
          result = await relays.trickleSession(
            route.relayId,
            {
              sessionId,
              ifMatch: String(request.headers['if-match']).slice(0, 1024),
              ...(fragment.iceUfrag === undefined
                ? {}
                : { iceUfrag: fragment.iceUfrag, icePwd: fragment.icePwd }),
              candidates: fragment.candidates,
              endOfCandidates: fragment.endOfCandidates,
              deadline: Date.now() + options.signalingTimeoutMs,
            },
            jobIds.trickleSession(sessionId, randomBytes(6).toString('hex')),
          );
        } catch (error) {
          throw relayProblem(error, { relayId: route.relayId, sessionId, logger });
        }
        if (result.outcome === 'precondition_failed') {
          throw new ProblemError(
            'precondition_failed',
            `If-Match does not match the session's ETag ${result.etag}`,
            { headers: { ETag: result.etag } },
          );
        }
        request.log.debug(
          { sessionId, candidates: fragment.candidates.length, end: fragment.endOfCandidates },
          'candidates trickled',
        );
        return reply.code(204).header('ETag', result.etag).send(null);
      },
    );
  });
};

function isCorsPreflight(request: FastifyRequest): boolean {
  return request.headers['access-control-request-method'] !== undefined;
}

function isSdpContentType(header: string | undefined): boolean {
  return isMediaType(header, SDP_CONTENT_TYPE);
}

/** Whether a Content-Type names `type` (case-insensitive, parameters ignored). */
function isMediaType(header: string | undefined, type: string): boolean {
  if (!header) return false;
  return header.split(';')[0]?.trim().toLowerCase() === type;
}

/** Maps a failed relay request to the problem the client sees. */
function relayProblem(
  error: unknown,
  { relayId, sessionId, logger }: { relayId: string; sessionId: string; logger: Logger },
): ProblemError {
  const retry = { 'Retry-After': String(RETRY_AFTER_SECONDS) };
  if (error instanceof RequestTimeoutError) {
    logger.warn({ relayId, sessionId, timeoutMs: error.timeoutMs }, 'relay did not answer in time');
    return new ProblemError('relay_timeout', 'The relay did not answer in time; retry shortly', {
      headers: retry,
      cause: error,
    });
  }
  if (error instanceof RemoteError) {
    // One table (RELAY_ERRORS in @streamanchor/protocol) says what each refusal becomes.
    const mapped = relayErrorProblem(error.code, error.detail);
    if (mapped.known) {
      const { status } = PROBLEMS[mapped.problem];
      if (status >= 500)
        logger.warn(
          { relayId, sessionId, code: error.code, detail: error.detail },
          'relay refused the request',
        );
      // The gateway refuses tokens from their exp on and the relay only CLOCK_TOLERANCE_SECONDS
      // later, so token_expired needs a request that took longer than that: a clean 401.
      const headers: Record<string, string> =
        status === 503
          ? retry
          : status === 401
            ? { 'WWW-Authenticate': 'Bearer error="invalid_token"' }
            : {};
      return new ProblemError(mapped.problem, mapped.detail, { headers, cause: error });
    }
  }
  logger.error({ err: error, relayId, sessionId }, 'relay request failed');
  return new ProblemError('internal_error', undefined, { cause: error });
}
