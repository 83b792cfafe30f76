import type { ContentHasher } from '@streamanchor/protocol';
import {
  DATA_CHANNEL_LABEL,
  NACK_CODES,
  type NackCode,
  PROTOCOL_VERSION,
  type Receipt,
} from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { DataChannel, PeerConnection } from 'node-datachannel';
import type { RecordContext, RecordPipeline } from '../records';
import { validateMessage } from '../records';

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
  topics: readonly string[];
  tokenExpiresAt: number;
  relayId: string;
  maxMessageBytes: number;
  maxPayloadBytes: number;
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
  text: string | undefined;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One client session: one PeerConnection carrying one data channel. Validates each
 * message, hands records to the shared pipeline, and answers each publish with exactly
 * one ack or nack, in arrival order.
 */
export class Session {
  readonly id: string;
  readonly subject: string;
  private state: State = 'connecting';
  private channel: DataChannel | undefined;
  private helloSent = false;
  private endCode: NackCode | undefined;
  private readonly replies: Slot[] = [];
  private replyHead = 0;
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
    this.ctx = {
      relayId: options.relayId,
      sessionId: options.sessionId,
      subject: options.subject,
      topics: options.topics,
      tokenExpiresAt: options.tokenExpiresAt,
      maxMessageBytes: options.maxMessageBytes,
      maxPayloadBytes: options.maxPayloadBytes,
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

  /** Sends a receipt if the channel is open; false when it cannot be delivered. */
  deliverReceipt(receipt: Receipt): boolean {
    if (this.state !== 'open' && this.state !== 'ending') return false;
    return this.send(JSON.stringify({ type: 'receipt', receipt }));
  }

  /**
   * Ends the session gracefully: messages arriving from now on are answered with
   * `endCode` (or ignored without one), replies already owed are delivered (for up
   * to closeGraceMs), then the peer connection closes.
   */
  async end(reason: string, endCode?: NackCode): Promise<void> {
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
    this.close(reason);
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
      protocol !== PROTOCOL_VERSION
    ) {
      this.options.logger.debug({ sessionId: this.id, label, protocol }, 'refusing data channel');
      try {
        channel.close();
      } catch {}
      return;
    }
    this.channel = channel;
    channel.onMessage((message) => this.onMessage(message));
    channel.onClosed(() => this.close('data channel closed'));
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
    this.state = 'open';
    this.send(
      JSON.stringify({
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        sessionId: this.id,
        subject: this.subject,
        topics: [...this.options.topics],
        maxPayloadBytes: this.options.maxPayloadBytes,
        maxMessageBytes: this.options.maxMessageBytes,
      }),
    );
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
    if (typeof message !== 'string') {
      this.reply(
        this.nack(
          null,
          'malformed_message',
          'binary messages are not accepted; send UTF-8 JSON text',
        ),
      );
      return;
    }
    const result = validateMessage(message, this.ctx);
    if (!result.ok) {
      this.reply(this.nack(result.id, result.code, result.detail));
      if (result.code === 'token_expired') void this.end('token expired', 'token_expired');
      return;
    }
    if (this.state === 'ending') {
      if (this.endCode) this.reply(this.nack(result.id, this.endCode, 'the session is ending'));
      return;
    }
    const slot: Slot = { text: undefined };
    this.replies.push(slot);
    const { id, record } = result;
    this.options.pipeline.submit(record, (outcome) => {
      if (outcome.ok) {
        this.options.counters.acks += 1;
        slot.text = `{"type":"ack","id":${JSON.stringify(id)},"recordId":"${record.recordId}","contentHash":"${record.contentHash}","acceptedAt":${record.acceptedAt}}`;
      } else {
        slot.text = this.nack(id, outcome.code, outcome.detail);
      }
      this.flushReplies();
    });
  }

  private reply(text: string): void {
    this.replies.push({ text });
    this.flushReplies();
  }

  private flushReplies(): void {
    if (this.state === 'closed') return;
    while (this.replyHead < this.replies.length) {
      const slot = this.replies[this.replyHead]!;
      if (slot.text === undefined) break;
      this.replyHead += 1;
      if (!this.send(slot.text)) return;
    }
    // Compact now and then instead of shifting on every reply.
    if (this.replyHead > 1024 && this.replyHead * 2 > this.replies.length) {
      this.replies.splice(0, this.replyHead);
      this.replyHead = 0;
    }
  }

  /** Never throws: a native send on a closed channel would abort the process. */
  private send(text: string): boolean {
    const channel = this.channel;
    if (!channel || this.state === 'closed') return false;
    try {
      if (!channel.isOpen()) return false;
      channel.sendMessage(text);
      if (channel.bufferedAmount() > this.options.maxBufferedBytes) {
        this.options.counters.closedSlowReaders += 1;
        this.options.logger.warn(
          { sessionId: this.id, bufferedAmount: channel.bufferedAmount() },
          'client is not reading; closing the session',
        );
        this.close('client not reading');
        return false;
      }
      return true;
    } catch (error) {
      this.options.logger.debug(
        { sessionId: this.id, err: error },
        'send failed; closing the session',
      );
      this.close('send failed');
      return false;
    }
  }

  private bufferedAmount(): number {
    try {
      return this.channel?.isOpen() ? this.channel.bufferedAmount() : 0;
    } catch {
      return 0;
    }
  }

  private armExpiry(): void {
    const delay = this.options.tokenExpiresAt - Date.now();
    if (delay > MAX_TIMER_MS) {
      this.after(MAX_TIMER_MS, () => this.armExpiry());
      return;
    }
    this.after(Math.max(0, delay), () => void this.end('token expired', 'token_expired'));
  }

  private after(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  private nack(id: string | null, code: NackCode, detail: string): string {
    const nacks = this.options.counters.nacks;
    nacks[code] = (nacks[code] ?? 0) + 1;
    return JSON.stringify({ type: 'nack', id, code, message: `${NACK_CODES[code]} (${detail})` });
  }
}
