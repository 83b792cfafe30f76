import { setImmediate as nextTurn } from 'node:timers/promises';
import type {
  AcceptedRecord,
  ContentHasher,
  ControlMessage,
  UnsubscribeReason,
} from '@streamanchor/protocol';
import {
  ACKS_PER_MESSAGE,
  DATA_CHANNEL_LABEL,
  isProtocolVersion,
  LIMITS,
  NACK_CODES,
  type NackCode,
  PROTOCOL_VERSION,
  type ProtocolVersion,
  type ReceiptAnchor,
  type ReceiptRecord,
  receiptOf,
  type SerializedReceipts,
  serializeReceiptsMessages,
  tokenExpiredFrom,
  topicAllowed,
} from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { DataChannel, PeerConnection } from 'node-datachannel';
import type { Outcome, RecordContext, RecordPipeline, TokenBucket } from '../records';
import { checkMessageSize, checkScreened, screenMessage, takeFromAll } from '../records';
import type { Subscriber, SubscriptionHub } from '../subscriptions';

/** Relay-wide counters the sessions update (read through app.stats()). */
export interface SessionCounters {
  acks: number;
  nacks: Partial<Record<NackCode, number>>;
  receiptsDelivered: number;
  receiptsUndeliverable: number;
  closedSlowReaders: number;
}

export function createCounters(): SessionCounters {
  return {
    acks: 0,
    nacks: {},
    receiptsDelivered: 0,
    receiptsUndeliverable: 0,
    closedSlowReaders: 0,
  };
}

export interface SessionOptions {
  sessionId: string;
  subject: string;
  /** Topics the token grants publishing to. */
  topics: readonly string[];
  /** Topics the token grants subscribing to. */
  subscribeTopics: readonly string[];
  /** The relay's subscriptions; without it, `subscribe` is nacked `unavailable`. */
  subscriptions?: SubscriptionHub;
  /** Most topics this session may be subscribed to at once (default LIMITS.maxSubscriptions). */
  maxSubscriptions?: number;
  /** The token's `exp` in ms; the session ends CLOCK_TOLERANCE_SECONDS after it. */
  tokenExpiresAt: number;
  relayId: string;
  maxMessageBytes: number;
  maxPayloadBytes: number;
  maxDepth: number;
  maxMembers: number;
  maxTotalMembers: number;
  /** This session's publish quota. */
  sessionQuota: TokenBucket;
  /** The quota shared by every session of this subject on this relay. */
  subjectQuota: TokenBucket;
  /**
   * Refused messages (rate_limited, malformed, too large or too complex, …) within one
   * second after which the session is closed (0: never): a client that ignores
   * `retryAfterMs`, or sends garbage, would otherwise cost the relay a check and a nack per
   * message, taken from every other session's share of the event loop.
   */
  closeAfterRefusals?: number;
  /** As closeAfterRefusals, for the refused messages' total size (UTF-16 units; 0: never). */
  closeAfterRefusedBytes?: number;
  /**
   * Called once when the session is closed for refusals; returns how long (ms) its subject
   * is now kept from opening new sessions (0: not at all), which the final nack announces.
   */
  onAbusive?: (session: Session, code: NackCode) => number;
  /** The clock for quotas and expiry checks (default Date.now). */
  now?: () => number;
  connectTimeoutMs: number;
  disconnectTimeoutMs: number;
  maxBufferedBytes: number;
  closeGraceMs: number;
  pipeline: RecordPipeline;
  hash: ContentHasher;
  counters: SessionCounters;
  logger: Logger;
  /** Called once, when the session has closed (for whatever reason). */
  onClosed: (session: Session, reason: string) => void;
}

type State = 'connecting' | 'open' | 'ending' | 'closed';

/** One reply slot per client message, so that acks and nacks leave in arrival order. */
interface Slot {
  /** The reply, once the outcome is known (for an ack, its members without braces). */
  text: string | undefined;
  ack: boolean;
  /** Called once the reply was handed to the channel (`subscribed`: delivery starts then). */
  onSent: (() => void) | undefined;
  /** A publish waiting for the pipeline: the client's id and the record (until its outcome). */
  id: string | null;
  record: AcceptedRecord | undefined;
}

/** A slot whose reply is `text` (undefined: not known yet). */
const slotOf = (text: string | undefined): Slot => ({
  text,
  ack: false,
  onSent: undefined,
  id: null,
  record: undefined,
});

const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * Receipts are paced by the channel's buffer: past maxBufferedBytes ÷ RECEIPT_HIGH_WATER_DIVISOR
 * unsent bytes, the next receipt waits for the client to read. A client whose buffer does not
 * shrink for RECEIPT_STALL_MS while receipts wait is closed as not reading.
 */
const RECEIPT_HIGH_WATER_DIVISOR = 2;
const RECEIPT_STALL_MS = 5_000;
const RECEIPT_POLL_MS = 5;
/** Receipt messages sent in one turn of the event loop: publishes arriving meanwhile are acked. */
const RECEIPTS_PER_TURN = 32;
/**
 * Batches a v2 session remembers having been sent `receipts` for (the oldest forgotten
 * first): a later notice of a remembered batch is one `anchoring` message. A forgotten one
 * gets its `receipts` again, which is only more bytes.
 */
const BATCHES_REMEMBERED = 256;

/**
 * A session's part of a receipt notice: its records of the batch (the batch's first notice),
 * or their number with how to get them should this session need them (every later notice).
 */
export type NoticePart =
  | { records: readonly ReceiptRecord[] }
  | { recordCount: number; fetch: () => Promise<readonly ReceiptRecord[]> };

/** A v2 `anchoring` message: a later notice of a batch whose records the session was sent. */
function anchoringMessage(anchor: ReceiptAnchor, records: number): SerializedReceipts {
  return { text: JSON.stringify({ type: 'anchoring', anchor, records }), records };
}

/**
 * One client session: one PeerConnection carrying one data channel. Validates each
 * message, hands records to the shared pipeline, and answers each publish with exactly
 * one ack or nack, in arrival order.
 */
export class Session implements Subscriber {
  readonly id: string;
  readonly subject: string;
  private refusals = { since: 0, count: 0, bytes: 0 };
  private abusive = false;
  /** This session's nacks by code (audited when it closes). */
  readonly nackCounts: Partial<Record<NackCode, number>> = {};
  private state: State = 'connecting';
  private channel: DataChannel | undefined;
  /** The data channel's protocol, which the client chose. */
  private protocol: ProtocolVersion = PROTOCOL_VERSION;
  /**
   * Largest message this relay sends the client: what the client's SDP allows (64 KiB when it
   * says nothing), at most LIMITS.maxReceiptsMessageBytes. Read when the channel opens.
   */
  private sendLimit: number = LIMITS.maxReceiptsMessageBytes;
  /** Receipt notices leave one after the other, in the order they were handed over. */
  private receiptsQueue: Promise<unknown> = Promise.resolve();
  /**
   * v2: the batches this session was sent `receipts` for: the revision of that first notice,
   * and the newest anchor sent since (`receipts` or `anchoring`).
   */
  private readonly batchesSent = new Map<
    string,
    { firstRevision: number; anchor: ReceiptAnchor }
  >();
  private helloSent = false;
  private endCode: NackCode | undefined;
  /** The relay is draining: later publishes and subscribes are nacked `relay_draining`. */
  private draining = false;
  /** drain() of a session whose channel had not opened yet: its notice follows the hello. */
  private drainNotice: string | undefined;
  private expiring = false;
  private closingReason: string | undefined;
  private readonly expiresAt: number;
  private readonly now: () => number;
  /** Replies owed, in arrival order, from replyHead on (those before it were sent: emptied). */
  private readonly replies: (Slot | undefined)[] = [];
  private replyHead = 0;
  /** A flushReplies is due at the end of this microtask checkpoint. */
  private flushQueued = false;
  private readonly flushQueuedReplies = () => {
    this.flushQueued = false;
    this.flushReplies();
  };
  private readonly quotas: readonly TokenBucket[];
  /** The instant the message being checked arrived (one clock reading per message). */
  private arrivedAt = 0;
  private readonly arrival = () => this.arrivedAt;
  private readonly ctx: RecordContext;
  private readonly timers = new Set<NodeJS.Timeout>();
  private disconnectTimer: NodeJS.Timeout | undefined;
  private gathered: Promise<void>;
  private resolveGathered!: () => void;
  private resolveClosed!: () => void;
  readonly closed: Promise<void>;

  constructor(
    readonly pc: PeerConnection,
    private readonly options: SessionOptions,
  ) {
    this.id = options.sessionId;
    this.subject = options.subject;
    this.expiresAt = tokenExpiredFrom(options.tokenExpiresAt);
    this.now = options.now ?? Date.now;
    this.quotas = [options.sessionQuota, options.subjectQuota];
    this.ctx = {
      relayId: options.relayId,
      sessionId: options.sessionId,
      subject: options.subject,
      topics: options.topics,
      tokenExpiresAt: this.expiresAt,
      maxMessageBytes: options.maxMessageBytes,
      maxPayloadBytes: options.maxPayloadBytes,
      maxDepth: options.maxDepth,
      maxMembers: options.maxMembers,
      maxTotalMembers: options.maxTotalMembers,
      hash: options.hash,
    };
    this.gathered = new Promise((resolve) => {
      this.resolveGathered = resolve;
    });
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    // Callbacks first: events fired before registration are lost.
    pc.onGatheringStateChange((state) => {
      if (state === 'complete') this.resolveGathered();
    });
    pc.onStateChange((state) => this.onPeerState(state));
    pc.onDataChannel((channel) => this.attach(channel));
    this.after(options.connectTimeoutMs, () => {
      if (this.state === 'connecting') this.close('data channel did not open in time');
    });
    this.armExpiry();
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Resolves when ICE gathering completed, or after `timeoutMs` (false) with what was gathered so far. */
  async waitForGathering(timeoutMs: number): Promise<boolean> {
    if (this.pc.gatheringState() === 'complete') return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([
        this.gathered.then(() => true as const),
        timeout,
        this.closed.then(() => false as const),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends one notice of a batch's anchoring for this session's records of it: under
   * protocol v2 as `receipts` messages the first time the session hears of the batch, as one
   * `anchoring` message afterwards (its records and proofs never change); under v1 as one
   * `receipt` message per record. A notice that gives only the number of records (every one
   * after the batch's first) needs them only for a v1 session or a v2 one that was not sent
   * the batch (or forgot it): `part.fetch` gets them then. Notices leave in the order this is
   * called, each paced by the channel's buffer (see sendPaced). Resolves with how many
   * records' receipts were handed to the channel (fewer when the session closed meanwhile).
   */
  deliverNotice(anchor: ReceiptAnchor, part: NoticePart): Promise<number> {
    const sent = this.receiptsQueue.then(async () => {
      let messages = this.anchoringOnly(anchor, part);
      if (!messages) {
        const records = 'records' in part ? part.records : await part.fetch();
        if (this.state !== 'open' && this.state !== 'ending') return 0;
        messages = this.noticeMessages(anchor, records);
      }
      return this.sendPaced(messages);
    });
    this.receiptsQueue = sent.catch(() => 0);
    return sent;
  }

  /**
   * The `anchoring` message of a notice that gave only the number of records, to a v2
   * session that was sent the batch; undefined when the session needs the records.
   */
  private anchoringOnly(anchor: ReceiptAnchor, part: NoticePart): SerializedReceipts[] | undefined {
    if ('records' in part || this.protocol === 'streamanchor.v1') return undefined;
    const known = this.batchesSent.get(anchor.batchId);
    if (!known) return undefined;
    // A retried, older notice tells the newest anchoring this session was told of again.
    if (anchor.revision > known.anchor.revision) known.anchor = anchor;
    return [anchoringMessage(known.anchor, part.recordCount)];
  }

  private noticeMessages(
    anchor: ReceiptAnchor,
    records: readonly ReceiptRecord[],
  ): SerializedReceipts[] {
    if (records.length === 0) return [];
    if (this.protocol === 'streamanchor.v1') {
      return records.map((record) => ({
        text: JSON.stringify({ type: 'receipt', receipt: receiptOf(anchor, record) }),
        records: 1,
      }));
    }
    const known = this.batchesSent.get(anchor.batchId);
    if (!known) {
      this.batchesSent.set(anchor.batchId, { firstRevision: anchor.revision, anchor });
      if (this.batchesSent.size > BATCHES_REMEMBERED) {
        const oldest = this.batchesSent.keys().next().value;
        if (oldest !== undefined) this.batchesSent.delete(oldest);
      }
      return serializeReceiptsMessages(anchor, records, this.sendLimit);
    }
    // An older notice than one already sent (a retried job): its records get the newest
    // anchoring this session was told of, never an older one after it.
    if (anchor.revision < known.anchor.revision)
      return serializeReceiptsMessages(known.anchor, records, this.sendLimit);
    // Another chunk of the notice that first told of the batch: these records are new here.
    if (anchor.revision === known.firstRevision)
      return serializeReceiptsMessages(anchor, records, this.sendLimit);
    known.anchor = anchor;
    return [anchoringMessage(anchor, records.length)];
  }

  /**
   * Sends `messages` in order, paced by the channel's buffer: past half of maxBufferedBytes
   * the next one waits for the client to read. Receipts come in bursts (every record of a
   * block's batches at once, included and then final), which a client that reads at its
   * publish rate drains in time but which, written at once, passed maxBufferedBytes and
   * closed it as not reading. Resolves with the records the sent messages carry.
   */
  private async sendPaced(messages: readonly SerializedReceipts[]): Promise<number> {
    const highWater = this.options.maxBufferedBytes / RECEIPT_HIGH_WATER_DIVISOR;
    let delivered = 0;
    let sent = 0;
    for (const message of messages) {
      if (this.state !== 'open' && this.state !== 'ending') break;
      if (sent > 0 && sent % RECEIPTS_PER_TURN === 0) await nextTurn();
      if (this.bufferedAmount() > highWater && !(await this.drainedBelow(highWater))) break;
      if (!this.send(message.text)) break;
      sent += 1;
      delivered += message.records;
    }
    return delivered;
  }

  /** Waits until the buffer is at most `bytes`; false (and the session closed) if it stalls. */
  private async drainedBelow(bytes: number): Promise<boolean> {
    let least = this.bufferedAmount();
    let progressAt = this.now();
    while (this.state === 'open' || this.state === 'ending') {
      await new Promise((resolve) => setTimeout(resolve, RECEIPT_POLL_MS));
      const buffered = this.bufferedAmount();
      if (buffered <= bytes) return true;
      if (buffered < least) {
        least = buffered;
        progressAt = this.now();
      } else if (this.now() - progressAt >= RECEIPT_STALL_MS) {
        this.options.counters.closedSlowReaders += 1;
        this.options.logger.warn(
          { sessionId: this.id, bufferedAmount: buffered, stalledMs: RECEIPT_STALL_MS },
          'client is not reading its receipts; closing the session',
        );
        this.close('client not reading');
        return false;
      }
    }
    return false;
  }

  /**
   * Ends the session gracefully: messages arriving from now on are answered with
   * `endCode` (or ignored without one), replies already owed are delivered (for up
   * to closeGraceMs), then the peer connection closes.
   */
  async end(
    reason: string,
    endCode?: NackCode,
    { awaitClose = true }: { awaitClose?: boolean } = {},
  ): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state !== 'open' && this.state !== 'ending') {
      this.close(reason);
      return;
    }
    if (this.state === 'open') {
      this.state = 'ending';
      this.endCode = endCode;
    }
    const deadline = Date.now() + this.options.closeGraceMs;
    while (this.state === 'ending' && Date.now() < deadline) {
      const owed = this.replies.length - this.replyHead;
      const buffered = this.bufferedAmount();
      if (owed === 0 && buffered === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The relay's own last word (token_expired, or the nack closing an abusive session) may
    // still sit in SCTP's queue though bufferedAmount says 0; a stream reset sent at once was
    // seen to overtake it under load (the nack lost). Give it a moment on the open channel.
    if (this.abusive || this.expiring) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, this.options.closeGraceMs)));
    }
    // A second end() while the first lingers: the first one closes.
    if (this.closingReason !== undefined) {
      if (awaitClose) await this.closed;
      return;
    }
    if (this.state !== 'ending' || !this.channel) return this.close(reason);
    // bufferedAmount 0 means handed to SCTP, not delivered, and libdatachannel fires the
    // channel's onClosed locally at once: closing the peer connection now could drop the
    // last replies (the token_expired nack among them). Close the channel (its stream reset
    // follows the queued data), then wait for the peer to hang up, or for the rest of the
    // grace period (at least a second), before closing the peer connection.
    this.closingReason = reason;
    try {
      this.channel.close();
    } catch {}
    const lingerMs = Math.max(deadline - Date.now(), Math.min(1000, this.options.closeGraceMs));
    const hangUp = (async () => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.closed,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, lingerMs);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
      this.close(reason);
    })();
    if (awaitClose) await hangUp;
  }

  /**
   * The relay is draining (docs/protocol.md §5.4.1): once the replies already owed have gone
   * out, the client is sent one `relay_draining` nack with id null (`detail` in its message),
   * and from then on publishes and subscribes are nacked `relay_draining`, while everything
   * else (records of subscriptions, receipts, unsubscribe) goes on until the session ends. A
   * session whose channel has not opened yet is told right after its hello.
   */
  drain(detail: string): void {
    if (this.draining || this.state === 'closed' || this.state === 'ending') return;
    this.draining = true;
    if (this.state === 'connecting') {
      this.drainNotice = detail;
      return;
    }
    this.reply(this.nack(null, 'relay_draining', detail));
  }

  /** Closes at once; safe to call any number of times, from any callback. */
  close(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.disconnectTimer) clearTimeout(this.disconnectTimer);
    try {
      this.channel?.close();
    } catch {}
    try {
      this.pc.close();
    } catch {}
    this.replies.length = 0;
    this.replyHead = 0;
    this.options.subscriptions?.drop(this);
    this.resolveGathered();
    this.resolveClosed();
    this.options.logger.debug({ sessionId: this.id, reason }, 'session closed');
    this.options.onClosed(this, reason);
  }

  // -------------------------------------------------------------------------

  private attach(channel: DataChannel): void {
    const label = channel.getLabel();
    const protocol = channel.getProtocol();
    if (
      this.state === 'closed' ||
      this.channel ||
      label !== DATA_CHANNEL_LABEL ||
      !isProtocolVersion(protocol)
    ) {
      this.options.logger.debug({ sessionId: this.id, label, protocol }, 'refusing data channel');
      try {
        channel.close();
      } catch {}
      return;
    }
    this.channel = channel;
    this.protocol = protocol;
    channel.onMessage((message) => this.onMessage(message));
    channel.onClosed(() => {
      // Our own close (end()): the peer connection closes after the linger, not now.
      if (this.closingReason !== undefined) return;
      this.close('data channel closed');
    });
    channel.onError((error) => {
      this.options.logger.debug({ sessionId: this.id, error }, 'data channel error');
      this.close('data channel error');
    });
    channel.onOpen(() => this.onOpen());
    // A channel the peer opened is usually open already when it is announced.
    if (channel.isOpen()) this.onOpen();
  }

  private onOpen(): void {
    if (this.helloSent || this.state !== 'connecting') return;
    this.helloSent = true;
    try {
      const remoteLimit = this.channel?.maxMessageSize() ?? 0;
      if (remoteLimit > 0) this.sendLimit = Math.min(remoteLimit, LIMITS.maxReceiptsMessageBytes);
    } catch {}
    this.state = 'open';
    this.send(
      JSON.stringify({
        type: 'hello',
        protocol: this.protocol,
        sessionId: this.id,
        subject: this.subject,
        topics: [...this.options.topics],
        subscribe: [...this.options.subscribeTopics],
        maxSubscriptions: this.maxSubscriptions,
        maxPayloadBytes: this.options.maxPayloadBytes,
        maxMessageBytes: this.options.maxMessageBytes,
        maxDepth: this.options.maxDepth,
        maxMembers: this.options.maxMembers,
        maxTotalMembers: this.options.maxTotalMembers,
      }),
    );
    if (this.drainNotice !== undefined)
      this.reply(this.nack(null, 'relay_draining', this.drainNotice));
    this.drainNotice = undefined;
  }

  private onPeerState(state: string): void {
    if (state === 'connected') {
      if (this.disconnectTimer) clearTimeout(this.disconnectTimer);
      this.disconnectTimer = undefined;
    } else if (state === 'disconnected') {
      if (!this.disconnectTimer && this.state !== 'closed') {
        this.disconnectTimer = setTimeout(
          () => this.close('peer disconnected'),
          this.options.disconnectTimeoutMs,
        );
        this.disconnectTimer.unref();
      }
    } else if (state === 'failed' || state === 'closed') {
      this.close(`peer connection ${state}`);
    }
  }

  private onMessage(message: string | Buffer | ArrayBuffer): void {
    if (this.state !== 'open' && this.state !== 'ending') return;
    // Closed for refused messages: what it still sends is not even read.
    if (this.abusive) return;
    const now = this.now();
    this.arrivedAt = now;
    if (typeof message !== 'string') {
      this.refuse(
        null,
        'malformed_message',
        'binary messages are not accepted; send UTF-8 JSON text',
        now,
        message.byteLength,
      );
      return;
    }
    if (this.protocol !== 'streamanchor.v1' && message.includes('\n')) {
      this.onPublishLines(message, now);
      return;
    }
    this.onPublish(message, now);
  }

  /**
   * A v2 message of several publishes, one per line (docs/protocol.md §5.2.1): each line is
   * checked and answered exactly as if it had come in its own message, in order. The size
   * limit is the whole message's; every other limit is each line's.
   */
  private onPublishLines(message: string, now: number): void {
    const tooLarge = checkMessageSize(message, this.ctx);
    if (tooLarge) {
      this.refuse(tooLarge.id, tooLarge.code, tooLarge.detail, now, message.length);
      return;
    }
    let publishes = 0;
    for (let start = 0; start < message.length; ) {
      let end = message.indexOf('\n', start);
      if (end === -1) end = message.length;
      if (end > start) {
        publishes += 1;
        this.onPublish(message.slice(start, end), now);
        // Closed for refusals: the rest of the message is not read.
        if (this.abusive || this.state === 'closed') return;
      }
      start = end + 1;
    }
    if (publishes === 0) {
      this.refuse(null, 'malformed_message', 'the message holds no publish', now, message.length);
    }
  }

  /** Checks one publish message (or one line of a v2 message) and answers it. */
  private onPublish(message: string, now: number): void {
    const screened = screenMessage(message, this.ctx);
    if (!screened.ok) {
      this.refuse(screened.id, screened.code, screened.detail, now, message.length);
      return;
    }
    // Quotas are taken before the costly steps (parse, canonical form, hash), so that a
    // session past its quota costs the relay a pre-scan per message, no more.
    if (this.state === 'open') {
      const retryAfterMs = takeFromAll(this.quotas, now);
      if (retryAfterMs > 0) {
        this.refuse(
          screened.id,
          'rate_limited',
          'publish quota exceeded',
          now,
          message.length,
          retryAfterMs,
        );
        return;
      }
    }
    const result = checkScreened(message, screened, this.ctx, this.arrival);
    if (!result.ok) {
      if (result.code === 'token_expired') {
        this.reply(this.nack(result.id, result.code, result.detail));
        this.expire();
      } else this.refuse(result.id, result.code, result.detail, now, message.length);
      return;
    }
    if (this.state === 'ending') {
      if (this.endCode) this.reply(this.nack(result.id, this.endCode, 'the session is ending'));
      return;
    }
    // Draining: nothing new is taken on this session; `unsubscribe` still works.
    if (this.draining && result.control?.type !== 'unsubscribe') {
      this.reply(this.nack(result.id, 'relay_draining', 'reconnect through the gateway'));
      return;
    }
    if (result.control) {
      this.onControl(result.id, result.control, now, message.length);
      return;
    }
    const slot = slotOf(undefined);
    slot.id = result.id;
    slot.record = result.record;
    this.replies.push(slot);
    this.options.pipeline.submit(result.record, this.onRecordOutcome, slot);
  }

  /**
   * A record's outcome, from the pipeline: its slot gets its ack or nack. One function for
   * every record of the session (the slot says which), not a closure per record.
   */
  private readonly onRecordOutcome = (outcome: Outcome, slot: Slot): void => {
    const record = slot.record!;
    slot.record = undefined;
    if (outcome.ok) {
      this.options.counters.acks += 1;
      slot.ack = true;
      slot.text = `"id":${JSON.stringify(slot.id)},"recordId":"${record.recordId}","contentHash":"${record.contentHash}","acceptedAt":${record.acceptedAt}`;
    } else {
      slot.text = this.nack(
        slot.id,
        outcome.code,
        outcome.detail,
        outcome.code === 'rate_limited' ? outcome.retryAfterMs : undefined,
      );
    }
    // The pipeline settles a whole group at once: send its replies in one go after it.
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushQueuedReplies);
    }
  };

  private get maxSubscriptions(): number {
    return this.options.maxSubscriptions ?? LIMITS.maxSubscriptions;
  }

  /**
   * `subscribe` and `unsubscribe` (docs/protocol.md §5.9). A `subscribe` is checked whole
   * (grants, the session's subscription limit) and then done whole; its `subscribed` answer
   * takes its place among the replies, and delivery starts once it was sent.
   */
  private onControl(id: string, message: ControlMessage, now: number, size: number): void {
    const hub = this.options.subscriptions;
    if (this.protocol === 'streamanchor.v1') {
      this.refuse(id, 'invalid_message', `${message.type} needs streamanchor.v2`, now, size);
      return;
    }
    if (message.type === 'unsubscribe') {
      hub?.unsubscribe(this, message.topics);
      this.reply(
        JSON.stringify({ type: 'unsubscribed', id, topics: message.topics, reason: 'requested' }),
      );
      return;
    }
    const names = message.topics.map((request) => request.topic);
    const twice = names.find((topic, i) => names.indexOf(topic) !== i);
    if (twice !== undefined) {
      this.refuse(id, 'invalid_message', `topic ${twice} named twice`, now, size);
      return;
    }
    const refused = names.find((topic) => !topicAllowed(this.options.subscribeTopics, topic));
    if (refused !== undefined) {
      this.refuse(
        id,
        'topic_not_allowed',
        `topic ${refused} is not granted for subscribing`,
        now,
        size,
      );
      return;
    }
    if (!hub) {
      this.reply(this.nack(id, 'unavailable', 'this relay does not serve subscriptions'));
      return;
    }
    const current = hub.topicsOf(this);
    const total = new Set([...current, ...names]).size;
    if (total > this.maxSubscriptions) {
      this.refuse(
        id,
        'too_many_subscriptions',
        `${total} topics; at most ${this.maxSubscriptions}`,
        now,
        size,
      );
      return;
    }
    const slot = slotOf(undefined);
    this.replies.push(slot);
    hub.subscribe(this, message.topics).then(
      (topics) => {
        if (this.state === 'closed') return hub.drop(this);
        slot.text = JSON.stringify({ type: 'subscribed', id, topics });
        slot.onSent = () => hub.activate(this, names);
        this.flushReplies();
      },
      (error: unknown) => {
        this.options.logger.warn({ err: error, sessionId: this.id }, 'subscribe failed');
        hub.unsubscribe(this, names);
        slot.text = this.nack(id, 'unavailable', 'could not subscribe right now; retry');
        this.flushReplies();
      },
    );
  }

  // Subscriber (the hub's side of a subscribing session) ---------------------------------

  get recordsMessageLimit(): number {
    return this.sendLimit;
  }

  canTake(): boolean {
    return (
      (this.state === 'open' || this.state === 'ending') &&
      this.bufferedAmount() <= this.options.maxBufferedBytes / RECEIPT_HIGH_WATER_DIVISOR
    );
  }

  deliver(text: string): boolean {
    return this.send(text);
  }

  subscriptionEnded(topic: string, reason: UnsubscribeReason, after: number): void {
    if (this.state !== 'open' && this.state !== 'ending') return;
    this.reply(JSON.stringify({ type: 'unsubscribed', id: null, topics: [topic], reason, after }));
  }

  /**
   * Answers a message the client should not have sent (a quota it ignored, a malformed or
   * oversized message) and counts it: past `closeAfterRefusals` refused messages, or
   * `closeAfterRefusedBytes` of them, within a second the session is closed, the rest of
   * what it sends is not read, and the subject is suspended (`onAbusive`), so that
   * reconnecting does not start the cost over. Bytes count because receiving a message costs
   * the relay (SCTP, DTLS, copying it into JavaScript) in proportion to its size, whatever
   * the verdict: a few large refused messages a second cost as much as many small ones.
   */
  private refuse(
    id: string | null,
    code: NackCode,
    detail: string,
    now: number,
    size: number,
    retryAfterMs?: number,
  ): void {
    this.reply(this.nack(id, code, detail, retryAfterMs));
    const limit = this.options.closeAfterRefusals ?? 0;
    const byteLimit = this.options.closeAfterRefusedBytes ?? 0;
    if ((limit <= 0 && byteLimit <= 0) || this.abusive) return;
    if (now - this.refusals.since >= 1000) this.refusals = { since: now, count: 0, bytes: 0 };
    this.refusals.count += 1;
    this.refusals.bytes += size;
    const tooMany = limit > 0 && this.refusals.count > limit;
    const tooLarge = byteLimit > 0 && this.refusals.bytes > byteLimit;
    if (!tooMany && !tooLarge) return;
    this.abusive = true;
    this.options.logger.warn(
      {
        sessionId: this.id,
        subject: this.subject,
        refusedPerSecond: this.refusals.count,
        refusedBytesPerSecond: this.refusals.bytes,
        code,
      },
      'session kept sending refused messages; closing it',
    );
    const suspendMs = this.options.onAbusive?.(this, code) ?? 0;
    const what = tooMany
      ? `more than ${limit} messages`
      : `more than ${byteLimit} bytes of messages`;
    this.reply(
      this.nack(
        null,
        'rate_limited',
        `${what} refused within a second; the session is closed` +
          (suspendMs > 0
            ? ` and this subject may not open a new one for ${Math.ceil(suspendMs / 1000)} s`
            : ''),
        Math.max(1000, suspendMs),
      ),
    );
    void this.end('kept sending refused messages', 'rate_limited');
  }

  private reply(text: string): void {
    this.replies.push(slotOf(text));
    this.flushReplies();
  }

  /**
   * Sends the replies that are ready, in order, up to the first one still waiting for its
   * outcome: under protocol v2 a run of acks as `acks` messages (one native send for up to
   * ACKS_PER_MESSAGE of them), under v1 each ack alone. One check that the channel is open
   * before them and one of its buffer after them (not one each per reply: a burst of acks
   * after a queue add would pay them hundreds of times; the burst is small beside
   * maxBufferedBytes).
   */
  private flushReplies(): void {
    if (this.state === 'closed') return;
    const replies = this.replies;
    if (this.replyHead >= replies.length || replies[this.replyHead]!.text === undefined) return;
    // Sent slots are emptied as they go (not kept until the next compaction): an ack's text
    // is garbage once it is out, and records waiting for Redis survive young collections
    // beside them.
    const channel = this.channel;
    const bundle = this.protocol !== 'streamanchor.v1';
    // An ack's UTF-8 bytes are at most 3 per UTF-16 unit: a bundle stays within sendLimit.
    const bundleChars = this.sendLimit / 3;
    try {
      const open = channel?.isOpen() ?? false;
      while (this.replyHead < replies.length) {
        const slot = replies[this.replyHead]!;
        if (slot.text === undefined) break;
        replies[this.replyHead] = undefined;
        this.replyHead += 1;
        let text = slot.text;
        if (slot.ack) {
          if (bundle) {
            text = `{"type":"acks","acks":[{${text}`;
            for (let n = 1; n < ACKS_PER_MESSAGE && this.replyHead < replies.length; n++) {
              const next = replies[this.replyHead]!;
              if (!next.ack || next.text === undefined) break;
              if (text.length + next.text.length + 8 > bundleChars) break;
              text += `},{${next.text}`;
              replies[this.replyHead] = undefined;
              this.replyHead += 1;
            }
            text += '}]}';
          } else text = `{"type":"ack",${text}}`;
        }
        // A channel that is not open cannot take them: they are dropped, as the client is.
        if (open) {
          channel!.sendMessage(text);
          slot.onSent?.();
        }
      }
      if (open && !this.bufferWithinLimit(channel!)) return;
    } catch (error) {
      this.sendFailed(error);
      return;
    }
    // Compact now and then instead of shifting on every reply.
    if (this.replyHead > 1024 && this.replyHead * 2 > replies.length) {
      replies.splice(0, this.replyHead);
      this.replyHead = 0;
    }
  }

  /** Never throws: a failed native send closes the session instead. */
  private send(text: string): boolean {
    const channel = this.channel;
    if (!channel || this.state === 'closed') return false;
    try {
      if (!channel.isOpen()) return false;
      channel.sendMessage(text);
      return this.bufferWithinLimit(channel);
    } catch (error) {
      this.sendFailed(error);
      return false;
    }
  }

  /** False (and the session closed) when the client leaves more than maxBufferedBytes unread. */
  private bufferWithinLimit(channel: DataChannel): boolean {
    const buffered = channel.bufferedAmount();
    if (buffered <= this.options.maxBufferedBytes) return true;
    this.options.counters.closedSlowReaders += 1;
    this.options.logger.warn(
      { sessionId: this.id, bufferedAmount: buffered },
      'client is not reading; closing the session',
    );
    this.close('client not reading');
    return false;
  }

  private sendFailed(error: unknown): void {
    this.options.logger.debug(
      { sessionId: this.id, err: error },
      'send failed; closing the session',
    );
    this.close('send failed');
  }

  private bufferedAmount(): number {
    try {
      return this.channel?.isOpen() ? this.channel.bufferedAmount() : 0;
    } catch {
      return 0;
    }
  }

  private armExpiry(): void {
    const delay = this.expiresAt - this.now();
    if (delay > MAX_TIMER_MS) {
      this.after(MAX_TIMER_MS, () => this.armExpiry());
      return;
    }
    this.after(Math.max(0, delay), () => this.expire());
  }

  /**
   * The token expired: tell the client with a `token_expired` nack (id null), after the
   * replies it is already owed, then end the session (publishes arriving meanwhile are
   * nacked `token_expired` too).
   */
  private expire(): void {
    if (this.state === 'closed' || this.expiring) return;
    this.expiring = true;
    if (this.state === 'open' || this.state === 'ending')
      this.reply(this.nack(null, 'token_expired', 'the session token expired; the session ends'));
    void this.end('token expired', 'token_expired');
  }

  private after(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  private nack(id: string | null, code: NackCode, detail: string, retryAfterMs?: number): string {
    const nacks = this.options.counters.nacks;
    nacks[code] = (nacks[code] ?? 0) + 1;
    this.nackCounts[code] = (this.nackCounts[code] ?? 0) + 1;
    const message = `${NACK_CODES[code]} (${detail})`;
    return JSON.stringify(
      retryAfterMs === undefined
        ? { type: 'nack', id, code, message }
        : { type: 'nack', id, code, message, retryAfterMs },
    );
  }
}
