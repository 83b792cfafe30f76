import { type AuditPublisher, type RelayRegistry, RemoteError } from '@streamanchor/bus';
import type {
  ContentHasher,
  CreateSessionRequest,
  CreateSessionResult,
  NackCode,
  ReceiptAnchor,
  TrickleSessionRequest,
  TrickleSessionResult,
} from '@streamanchor/protocol';
import { candidateProblem, ifMatchSatisfied, tokenExpiredFrom } from '@streamanchor/protocol';
import { coturnCredential, type Logger } from '@streamanchor/service-kit';
import { PeerConnection, type RtcConfig } from 'node-datachannel';
import type { Config } from '../config';
import {
  createSubjectQuotas,
  createTokenBucket,
  type RecordPipeline,
  type SubjectQuotas,
} from '../records';
import type { SubscriptionHub } from '../subscriptions';
import { refusal } from './refusal';
import {
  candidatesOf,
  iceOfOffer,
  offerProblem,
  withMaxMessageSize,
  withoutCandidates,
  withoutTrickleOption,
  withPublicAddress,
} from './sdp';
import { type NoticePart, Session, type SessionCounters } from './session';

export interface SessionManagerDeps {
  config: Config;
  logger: Logger;
  pipeline: RecordPipeline;
  hash: ContentHasher;
  registry: RelayRegistry;
  counters: SessionCounters;
  /** Where session_closed and session_nacks audit events go (none: not audited). */
  audit?: Pick<AuditPublisher, 'record'>;
  /** Live records for subscribing sessions (none: `subscribe` is nacked `unavailable`). */
  subscriptions?: SubscriptionHub;
  /**
   * The IP address answers announce as an extra host candidate (ICE_PUBLIC_ADDRESS, a
   * hostname resolved); default: config.ice.publicAddress as it is.
   */
  publicAddress?: () => string | undefined;
}

/**
 * The relay's own ICE servers for one session. A `turn:host:port` listed without credentials
 * (config.ts parsed it) gets a fresh TURN REST credential from ICE_TURN_SECRET (as coturn's
 * use-auth-secret expects), passed as an object: node-datachannel would split the
 * `<expiry>:<id>` username of a `turn:user:pass@host` URL at its colon.
 */
function iceServersFor(config: Config, nowMs: number): RtcConfig['iceServers'] {
  const { servers, turnSecret, turnTtlS } = config.ice;
  return servers.map((server) => {
    if (typeof server === 'string') return server;
    const expiresAtS = Math.floor(nowMs / 1000) + turnTtlS;
    // loadConfig lists a server to mint for only when ICE_TURN_SECRET is set.
    const { username, credential } = coturnCredential(turnSecret!, expiresAtS, config.relayId);
    return { ...server, username, password: credential, relayType: 'TurnUdp' };
  });
}

/** The node-datachannel configuration a session's PeerConnection gets (TURN credentials minted at `nowMs`). */
export function rtcConfigFor(config: Config, nowMs: number = Date.now()): RtcConfig {
  const rtc: RtcConfig = {
    iceServers: iceServersFor(config, nowMs),
    bindAddress: config.ice.bindAddress,
    // One byte above the advertised limit: libdatachannel truncates larger incoming
    // messages to its own limit, so a too-large message arrives as limit+1 bytes and is
    // nacked `message_too_large` instead of failing to parse.
    maxMessageSize: config.maxMessageBytes + 1,
  };
  if (config.ice.udpPort > 0) {
    rtc.enableIceUdpMux = true;
    rtc.portRangeBegin = config.ice.udpPort;
    rtc.portRangeEnd = config.ice.udpPort;
  }
  return rtc;
}

/** Most candidates a client may trickle into one session (every PATCH together). */
export const MAX_TRICKLED_CANDIDATES = 64;

/** What trickle ICE needs to know of an answered session. */
interface IceState {
  /** The session's ETag: the quoted ice-ufrag of the relay's answer. */
  etag: string;
  /** The offer's ICE credentials (a PATCH with others asks for an ICE restart). */
  remoteUfrag: string | undefined;
  remotePwd: string | undefined;
  /** The offer's data-channel m= section's mid. */
  mid: string;
  /** Candidate lines taken so far (a repeated one is taken once). */
  seen: Set<string>;
  ended: boolean;
}

/** Holds the relay's sessions: creates them from offers, ends them, and routes receipts. */
export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly ice = new WeakMap<Session, IceState>();
  private creating = 0;
  private accepting = true;
  private readonly subjectQuotas: SubjectQuotas;

  constructor(private readonly deps: SessionManagerDeps) {
    this.subjectQuotas = createSubjectQuotas(deps.config.publishQuota.perSubject);
  }

  get size(): number {
    return this.sessions.size;
  }

  ids(): string[] {
    return [...this.sessions.keys()];
  }

  get(sessionId: string): Session | undefined {
    return this.sessions.get(sessionId);
  }

  /** Takes an offer, answers it (ICE gathered, no trickle). Throws RemoteError (`refusal`) for refusals. */
  async create(request: CreateSessionRequest): Promise<CreateSessionResult> {
    const { config, logger } = this.deps;
    if (!this.accepting) throw refusal('shutting_down', 'the relay is shutting down');
    if (Date.now() > request.deadline)
      throw refusal('deadline_exceeded', 'the request expired before the relay took it');
    if (tokenExpiredFrom(request.tokenExpiresAt) <= Date.now())
      throw refusal('token_expired', 'the token has already expired');
    if (this.sessions.has(request.sessionId))
      throw refusal('session_exists', 'this session id is taken');
    if (this.sessions.size + this.creating >= config.maxSessions) {
      throw refusal(
        'at_capacity',
        `this relay holds its maximum of ${config.maxSessions} sessions`,
      );
    }
    const problem = offerProblem(request.offerSdp);
    if (problem) throw refusal('invalid_sdp', problem);

    this.creating += 1;
    let session: Session | undefined;
    try {
      const pc = new PeerConnection(`s-${request.sessionId}`, rtcConfigFor(config));
      const subjectQuota = this.subjectQuotas.acquire(request.subject);
      let released = false;
      const releaseQuota = () => {
        if (released) return;
        released = true;
        this.subjectQuotas.release(request.subject);
      };
      session = new Session(pc, {
        sessionId: request.sessionId,
        subject: request.subject,
        topics: request.topics,
        // A job from a gateway before subscribers carries none: no subscription.
        subscribeTopics: request.subscribeTopics ?? [],
        subscriptions: this.deps.subscriptions,
        maxSubscriptions: config.maxSubscriptions,
        tokenExpiresAt: request.tokenExpiresAt,
        relayId: config.relayId,
        maxMessageBytes: config.maxMessageBytes,
        maxPayloadBytes: config.maxPayloadBytes,
        maxDepth: config.maxPayloadDepth,
        maxMembers: config.maxPayloadMembers,
        maxTotalMembers: config.maxPayloadTotalMembers,
        sessionQuota: createTokenBucket(config.publishQuota.perSession),
        subjectQuota,
        closeAfterRefusals: config.publishQuota.closeAfterRefusals,
        closeAfterRefusedBytes: config.publishQuota.closeAfterRefusedBytes,
        onAbusive: (abusive, code) => this.suspend(abusive, code),
        connectTimeoutMs: config.connectTimeoutMs,
        disconnectTimeoutMs: config.disconnectTimeoutMs,
        maxBufferedBytes: config.maxBufferedBytes,
        closeGraceMs: config.closeGraceMs,
        pipeline: this.deps.pipeline,
        hash: this.deps.hash,
        counters: this.deps.counters,
        logger,
        onClosed: (closed, reason) => {
          releaseQuota();
          this.onClosed(closed, reason);
        },
      });
      this.sessions.set(request.sessionId, session);
      try {
        const offer = config.ice.useOfferCandidates
          ? request.offerSdp
          : withoutCandidates(request.offerSdp);
        pc.setRemoteDescription(offer, 'offer');
      } catch (error) {
        throw refusal('invalid_sdp', shorten((error as Error).message));
      }
      const complete = await session.waitForGathering(config.gatherTimeoutMs);
      if (session.isClosed)
        throw refusal('session_closed', 'the session was closed while it was being created');
      const local = pc.localDescription();
      if (!local) throw refusal('invalid_sdp', 'the relay could not answer this offer');
      if (!complete)
        logger.warn(
          { sessionId: request.sessionId },
          'ICE gathering timed out; answering with what was gathered',
        );
      if (Date.now() > request.deadline)
        throw refusal('deadline_exceeded', 'the answer was ready after the deadline');
      // The answer is complete and the relay never trickles its own candidates: no `trickle`
      // option (clients trickle theirs by PATCH, which needs none).
      let answerSdp = withoutTrickleOption(withMaxMessageSize(local.sdp, config.maxMessageBytes));
      const publicAddress = this.deps.publicAddress
        ? this.deps.publicAddress()
        : config.ice.publicAddress;
      if (publicAddress) answerSdp = withPublicAddress(answerSdp, publicAddress);
      this.rememberIce(session, request.offerSdp, answerSdp);
      // The route is written without holding the answer back (one Redis round trip less on
      // every session's setup; the gateway writes the same route as it answers). Sent now, on
      // the connection this session's later deleteSession uses, it runs before that one, and
      // before any DELETE of the client, which needs the answer this reply carries.
      void this.deps.registry
        .setSession(
          request.sessionId,
          { relayId: config.relayId, subject: request.subject },
          config.sessionTtlMs,
        )
        .catch((error: unknown) =>
          logger.warn(
            { err: error, sessionId: request.sessionId },
            'could not register the session route',
          ),
        );
      logger.debug(
        { sessionId: request.sessionId, candidates: candidatesOf(answerSdp) },
        'session answered',
      );
      return { answerSdp };
    } catch (error) {
      session?.close('creation failed');
      if (error instanceof RemoteError) throw error;
      logger.error({ err: error, sessionId: request.sessionId }, 'could not create a session');
      throw refusal('internal_error', 'the relay could not create the session');
    } finally {
      this.creating -= 1;
    }
  }

  /** Ends a session (delivering the acks it is owed first); false if this relay does not hold it. */
  async delete(sessionId: string): Promise<boolean> {
    const session = this.sessions.get(sessionId);
    if (!session) return false;
    // The reply goes out once the owed acks are handed over; the peer connection closes
    // after its linger (session.end), without holding the gateway's request.
    await session.end('deleted', undefined, { awaitClose: false });
    return true;
  }

  /**
   * Takes trickled ICE candidates (PATCH /v1/sessions/<id>): checks If-Match against the
   * session's ETag (`precondition_failed` when it does not match), refuses an ICE restart
   * (libdatachannel cannot restart ICE), then adds each new UDP candidate to the peer
   * connection when the relay uses the client's candidates (ICE_USE_OFFER_CANDIDATES);
   * otherwise they are checked and counted but not used, like an offer's (the relay learns
   * the client's address from its checks). Throws RemoteError (`refusal`) for refusals.
   */
  trickle(request: TrickleSessionRequest): TrickleSessionResult {
    const session = this.sessions.get(request.sessionId);
    const ice = session && !session.isClosed ? this.ice.get(session) : undefined;
    if (!session || !ice)
      throw refusal('session_not_found', 'this relay does not hold the session');
    if (!ifMatchSatisfied(request.ifMatch, ice.etag))
      return { outcome: 'precondition_failed', etag: ice.etag };
    if (
      request.iceUfrag !== undefined &&
      (request.iceUfrag !== ice.remoteUfrag || request.icePwd !== ice.remotePwd)
    ) {
      throw refusal(
        'ice_restart_unsupported',
        'The relay cannot restart ICE (new a=ice-ufrag/a=ice-pwd); open a new session instead',
      );
    }
    const fresh: string[] = [];
    for (const { candidate, mid } of request.candidates) {
      if (mid !== undefined && mid !== ice.mid)
        throw refusal('invalid_sdpfrag', `The session has no m= section with a=mid:${mid}`);
      const problem = candidateProblem(candidate);
      if (problem) throw refusal('invalid_sdpfrag', `Bad candidate: ${problem}`);
      if (!ice.seen.has(candidate) && !fresh.includes(candidate)) fresh.push(candidate);
    }
    if (ice.ended && fresh.length > 0)
      throw refusal('invalid_sdpfrag', 'Candidates after a=end-of-candidates are not taken');
    if (ice.seen.size + fresh.length > MAX_TRICKLED_CANDIDATES)
      throw refusal(
        'invalid_sdpfrag',
        `A session takes at most ${MAX_TRICKLED_CANDIDATES} trickled candidates`,
      );
    if (this.deps.config.ice.useOfferCandidates) {
      for (const candidate of fresh) {
        // libjuice speaks ICE over UDP only: TCP candidates are taken but not used.
        if (candidate.split(' ')[2]?.toLowerCase() !== 'udp') continue;
        try {
          session.pc.addRemoteCandidate(candidate, ice.mid);
        } catch (error) {
          throw refusal('invalid_sdpfrag', shorten(`Bad candidate: ${(error as Error).message}`));
        }
      }
    }
    for (const candidate of fresh) ice.seen.add(candidate);
    if (request.endOfCandidates) ice.ended = true;
    this.deps.logger.debug(
      { sessionId: session.id, candidates: fresh.length, ended: ice.ended },
      'candidates trickled',
    );
    return { outcome: 'applied', etag: ice.etag };
  }

  /** What trickle() needs of an answered session: its ETag, the offer's ICE credentials and mid. */
  private rememberIce(session: Session, offerSdp: string, answerSdp: string): void {
    const offer = iceOfOffer(offerSdp);
    this.ice.set(session, {
      etag: `"${iceOfOffer(answerSdp).ufrag ?? ''}"`,
      remoteUfrag: offer.ufrag,
      remotePwd: offer.pwd,
      mid: offer.mid ?? '0',
      seen: new Set(),
      ended: false,
    });
  }

  /** How many trickled candidates a session took, and whether they ended (for tests). */
  trickled(sessionId: string): { candidates: number; ended: boolean } | undefined {
    const session = this.sessions.get(sessionId);
    const ice = session ? this.ice.get(session) : undefined;
    return ice ? { candidates: ice.seen.size, ended: ice.ended } : undefined;
  }

  /** Session.deliverNotice; 0 for a session that is not here. */
  async deliverNotice(sessionId: string, anchor: ReceiptAnchor, part: NoticePart): Promise<number> {
    const session = this.sessions.get(sessionId);
    return session ? session.deliverNotice(anchor, part) : 0;
  }

  /** Refuses new sessions from now on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /**
   * Tells every session the relay is draining (Session.drain); call stopAccepting() first,
   * so that no session is created after it.
   */
  drainAll(detail: string): void {
    for (const session of this.sessions.values()) session.drain(detail);
  }

  /**
   * Resolves once no session is left (true), or after `timeoutMs` or on `signal` (false):
   * the wait of a drain for clients to leave.
   */
  async whenEmpty(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size > 0 || this.creating > 0) {
      if (signal?.aborted || Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, deadline - Date.now())));
    }
    return true;
  }

  /** Ends every session, answering later publishes with `code`. */
  async endAll(reason: string, code: NackCode): Promise<void> {
    await Promise.all([...this.sessions.values()].map((session) => session.end(reason, code)));
  }

  /** A session was closed for refused messages: its subject may not open another for a while. */
  private suspend(session: Session, code: NackCode): number {
    const { config, logger, registry, audit } = this.deps;
    const suspendMs = config.publishQuota.suspendAbusiveSubjectMs;
    if (suspendMs <= 0) return 0;
    registry
      .suspendSubject(session.subject, suspendMs)
      .catch((error: unknown) =>
        logger.warn({ err: error, subject: session.subject }, 'could not suspend the subject'),
      );
    audit?.record({
      kind: 'subject_suspended',
      subject: session.subject,
      relayId: config.relayId,
      sessionId: session.id,
      details: { code, suspendMs },
    });
    return suspendMs;
  }

  private onClosed(session: Session, reason: string): void {
    if (this.sessions.get(session.id) !== session) return;
    this.sessions.delete(session.id);
    this.deps.logger.debug({ sessionId: session.id, reason }, 'session removed');
    const who = {
      subject: session.subject,
      relayId: this.deps.config.relayId,
      sessionId: session.id,
    };
    this.deps.audit?.record({ kind: 'session_closed', ...who, details: { reason } });
    if (Object.keys(session.nackCounts).length > 0) {
      this.deps.audit?.record({
        kind: 'session_nacks',
        ...who,
        details: { counts: { ...session.nackCounts } },
      });
    }
    this.deps.registry
      .deleteSession(session.id)
      .catch((error: unknown) =>
        this.deps.logger.warn(
          { err: error, sessionId: session.id },
          'could not delete the session route',
        ),
      );
  }
}

function shorten(text: string): string {
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
