import {
  type AckMessage,
  canonicalPayload,
  contentHashOf,
  type HelloMessage,
  isProtocolVersion,
  LIMITS,
  type NackMessage,
  PROTOCOL_VERSION,
  type ProtocolVersion,
  parseServerMessage,
  type Receipt,
  receiptOf,
  type ServerMessage,
  type SubscribedTopic,
  type UnsubscribedMessage,
  utf8Length,
} from '@streamanchor/protocol';
import {
  ConnectError,
  IntegrityError,
  NackError,
  SessionClosedError,
  StreamAnchorError,
  SubscriptionError,
} from './errors';
import type { IceServer } from './link-header';
import { DEFAULT_MAX_TRACKED_RECORDS, ReceiptBook } from './receipt-book';
import { deleteSessionResource, type FetchLike, type SessionResource } from './signaling';
import { type SubscribeOptions, Subscription } from './subscription';

/** `connecting` until the relay's hello, `open` while records can be published, then `closed`. */
export type SessionState = 'connecting' | 'open' | 'closed';

/** A record the relay durably accepted. */
export interface Ack {
  /** The publish id (yours, or the SDK's incrementing default). */
  id: string;
  topic: string;
  recordId: `0x${string}`;
  /** keccak-256 of the canonical payload; checked against the locally computed hash. */
  contentHash: `0x${string}`;
  acceptedAt: number;
}

export interface PublishOptions {
  /** Correlation id echoed in the ack or nack (≤ 64 chars). Defaults to an incrementing number. */
  id?: string;
}

/**
 * The relay's answer to a raw message: its ack or its nack, as received (an ack that came in
 * a v2 `acks` message is given as the `ack` message it stands for).
 */
export type RawResult = AckMessage | NackMessage;

/**
 * What answers a sent message, in the order they were sent (docs/protocol.md §5.4): an ack
 * or nack, or for `subscribe` the subscriptions its `subscribed` started.
 */
type Answer =
  | RawResult
  | { type: 'subscribed'; subscriptions: Subscription[] }
  | UnsubscribedMessage;

interface Pending {
  id: string | null;
  resolve(answer: Answer): void;
  reject(error: Error): void;
}

interface Outgoing {
  pending: Pending;
  text: string;
  alone: boolean;
}

export interface SessionInit {
  pc: RTCPeerConnection;
  channel: RTCDataChannel;
  token: string;
  fetch: FetchLike;
  /** Sends wait for `bufferedamountlow` while more than this many bytes are queued. */
  bufferHighWaterMark: number;
  bufferLowWaterMark: number;
  /** How many records the session remembers receipts for (see `receiptFor`). Default 10 000. */
  maxTrackedRecords?: number;
}

/** Options of `StreamAnchorSession.finalReceipt`. */
export interface FinalReceiptOptions {
  /** Stops waiting: the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * One open session with a relay: a peer connection carrying the `records` data channel.
 * Obtain it from `connect()`.
 */
export class StreamAnchorSession implements AsyncIterable<Receipt> {
  #state: SessionState = 'connecting';
  #hello: HelloMessage | undefined;
  #resource: SessionResource | undefined;
  #closeReason: string | undefined;
  /** The relay said `relay_draining` (docs/protocol.md §5.4.1). */
  #draining = false;
  readonly #drainingListeners = new Set<() => void>();
  readonly #pc: RTCPeerConnection;
  readonly #channel: RTCDataChannel;
  /** The protocol the channel was opened with, which the relay's hello must name. */
  readonly #protocol: ProtocolVersion;
  readonly #token: string;
  readonly #fetch: FetchLike;
  readonly #highWaterMark: number;
  #nextId = 0;
  #nextControlId = 0;
  /** Sent messages awaiting their answer, in send order (the relay answers in arrival order). */
  readonly #inFlight: Pending[] = [];
  /** Publish ids reserved by queued or in-flight publishes. */
  readonly #reservedIds = new Set<string>();
  /** Texts waiting to be sent, in call order (see #send). */
  readonly #outbox: Outgoing[] = [];
  #flushing = false;
  /** The current receipt of every record acked in this session (bounded; see ReceiptBook). */
  readonly #receiptBook: ReceiptBook;
  /** The live subscription of each topic, as the relay holds them (§5.9). */
  readonly #subscriptions = new Map<string, Subscription>();
  readonly #receiptListeners = new Set<(receipt: Receipt) => void>();
  readonly #stateListeners = new Set<(state: SessionState) => void>();
  readonly #messageListeners = new Set<(message: ServerMessage) => void>();
  #ready: { resolve(): void; reject(error: Error): void } | undefined;
  /** Why the open failed before anyone waited for it (a hello of another protocol). */
  #openFailure: ConnectError | undefined;
  #closing: Promise<void> | undefined;

  /** @internal Use `connect()`. */
  constructor(init: SessionInit) {
    this.#pc = init.pc;
    this.#channel = init.channel;
    this.#protocol = isProtocolVersion(init.channel.protocol)
      ? init.channel.protocol
      : PROTOCOL_VERSION;
    this.#token = init.token;
    this.#fetch = init.fetch;
    this.#highWaterMark = init.bufferHighWaterMark;
    this.#receiptBook = new ReceiptBook(init.maxTrackedRecords ?? DEFAULT_MAX_TRACKED_RECORDS);
    this.#channel.bufferedAmountLowThreshold = init.bufferLowWaterMark;
    this.#channel.addEventListener('message', (event) => this.#onMessage(event.data));
    this.#channel.addEventListener('close', () => this.#terminate('the data channel closed'));
    this.#pc.addEventListener('connectionstatechange', () => {
      if (this.#pc.connectionState === 'failed') this.#terminate('the peer connection failed');
      if (this.#pc.connectionState === 'closed') this.#terminate('the peer connection closed');
    });
  }

  /** Current state; see `onStateChange`. */
  get state(): SessionState {
    return this.#state;
  }

  /** The relay's hello: session id, subject, granted topics and size limits. Set once open. */
  get hello(): HelloMessage | undefined {
    return this.#hello;
  }

  /** Absolute URL of the session resource at the gateway (the `Location` it returned). */
  get url(): string | undefined {
    return this.#resource?.url;
  }

  get etag(): string | null | undefined {
    return this.#resource?.etag;
  }

  /**
   * ICE servers the gateway announced in `Link` headers. Without trickle ICE they apply
   * only to the next connection: pass them as `iceServers` when reconnecting.
   */
  get iceServers(): IceServer[] {
    return this.#resource?.iceServers ?? [];
  }

  /** The underlying peer connection (read it; do not renegotiate it). */
  get peerConnection(): RTCPeerConnection {
    return this.#pc;
  }

  /** Why the session closed, when it did. */
  get closeReason(): string | undefined {
    return this.#closeReason;
  }

  /**
   * True once the relay said it is draining (a `relay_draining` nack with id null,
   * docs/protocol.md §5.4.1): it is about to stop. The session stays open for a while
   * (records of subscriptions and receipts still come), but publishes and subscribes on it
   * are nacked `relay_draining`. Connect again at once (the gateway places the new session on
   * another relay), resume subscriptions after their last position, then close this one.
   */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Calls `listener` once, when the relay says it is draining (see `draining`): the moment
   * to reconnect, without a back-off. Returns an unsubscribe function.
   */
  onDraining(listener: () => void): () => void {
    this.#drainingListeners.add(listener);
    return () => this.#drainingListeners.delete(listener);
  }

  /**
   * Publishes one record. Resolves with the relay's ack once the record is durably
   * queued; rejects with NackError on a nack, IntegrityError when the acked content hash
   * differs from the locally computed one, NonCanonicalPayloadError (protocol) when the
   * payload has no canonical JSON form, SessionClosedError when the session ends first.
   * Publishes made in the same task (a loop, say) leave together in one data-channel message
   * under protocol v2; each is still acked or nacked on its own.
   */
  async publish(topic: string, payload: unknown, options: PublishOptions = {}): Promise<Ack> {
    const canonical = canonicalPayload(payload);
    const expectedHash = contentHashOf(canonical);
    const id = options.id ?? String(++this.#nextId);
    if (this.#reservedIds.has(id)) {
      throw new StreamAnchorError(`A publish with id "${id}" is already pending`);
    }
    // The payload goes out in its canonical form, so the relay hashes exactly these bytes.
    const text = `{"type":"publish","id":${JSON.stringify(id)},"topic":${JSON.stringify(topic)},"payload":${canonical}}`;
    this.#reservedIds.add(id);
    let answer: Answer;
    try {
      answer = await this.#send(id, text);
    } finally {
      this.#reservedIds.delete(id);
    }
    if (answer.type === 'nack') throw new NackError(answer);
    if (answer.type !== 'ack') throw unexpectedAnswer(answer);
    if (answer.contentHash !== expectedHash) {
      throw new IntegrityError(
        'The relay acked a different content hash than this client computed',
        {
          details: `record ${answer.recordId}: expected ${expectedHash}, acked ${answer.contentHash}`,
        },
      );
    }
    return {
      id,
      topic,
      recordId: answer.recordId,
      contentHash: answer.contentHash,
      acceptedAt: answer.acceptedAt,
    };
  }

  /**
   * FOR TESTS AND DEMOS ONLY: sends `text` as-is, as a message of its own, on the data
   * channel and resolves with the relay's ack or nack (it does not reject on a nack). Use
   * `publish` for real records. Under v2 a line feed in `text` separates publishes
   * (docs/protocol.md §5.2.1): give one publish, without a line feed, so that one answer comes.
   */
  async sendRaw(text: string): Promise<RawResult> {
    const answer = await this.#send(null, text, true);
    if (answer.type !== 'ack' && answer.type !== 'nack') throw unexpectedAnswer(answer);
    return answer;
  }

  /**
   * Subscribes to one topic (protocol v2, a token granting it in `subscribe`): resolves once
   * the relay answered `subscribed`, with the Subscription its records come to (in position
   * order: those after `options.after`, or without it from the next record acked). Subscribing to a topic
   * the session already has starts it over: the previous Subscription ends (`requested`).
   * Rejects with SubscriptionError (`code`: `topic_not_allowed`, `too_many_subscriptions`,
   * `invalid_message` — also under v1 —, …) when the relay refuses, SessionClosedError when
   * the session ends first.
   */
  async subscribe(topic: string, options: SubscribeOptions = {}): Promise<Subscription> {
    const request = {
      topic,
      ...(options.after === undefined ? {} : { after: options.after }),
      ...(options.anchoringAfter === undefined ? {} : { anchoringAfter: options.anchoringAfter }),
    };
    const answer = await this.#sendControl('s', (id) => ({
      type: 'subscribe',
      id,
      topics: [request],
    }));
    if (answer.type === 'nack') {
      throw new SubscriptionError({ ...nackFields(answer), topic, action: 'subscribe' });
    }
    if (answer.type !== 'subscribed') throw unexpectedAnswer(answer);
    return answer.subscriptions[0]!;
  }

  /**
   * Calls `listener` with every receipt that is newer than the one held for its record:
   * each record's receipts come with increasing `revision` (`included`, then `final`; after
   * a reorg `reorged`, then `included` again). Duplicates and late, lower revisions are
   * dropped, as are receipts for records this session did not ack. Returns an unsubscribe
   * function. To act only on receipts that stay, wait for `final` (see `finalReceipt`).
   */
  onReceipt(listener: (receipt: Receipt) => void): () => void {
    this.#receiptListeners.add(listener);
    return () => this.#receiptListeners.delete(listener);
  }

  /**
   * The current (highest-revision) receipt of a record acked in this session, or undefined
   * before its first receipt. It may still be `included` (a reorg can replace it) or
   * `reorged` (a new one follows); only a `final` receipt stays. The session remembers the
   * last `maxTrackedRecords` records (default 10 000), forgetting long-final ones first.
   */
  receiptFor(recordId: string): Receipt | undefined {
    return this.#receiptBook.current(recordId);
  }

  /**
   * Resolves with the record's `final` receipt: at once when it is held, else when it
   * arrives (the default indexer finalizes 12 blocks after inclusion). A client that waits
   * for `final` never holds a receipt a reorg can revoke. Rejects with StreamAnchorError
   * when `recordId` was not acked in this session (or was forgotten, see `receiptFor`),
   * SessionClosedError when the session closes first, and `signal.reason` on abort.
   */
  finalReceipt(recordId: string, options: FinalReceiptOptions = {}): Promise<Receipt> {
    return this.#receiptBook.whenFinal(recordId, options.signal);
  }

  onStateChange(listener: (state: SessionState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /** Every valid message from the relay, before the SDK handles it (for logs and debugging). */
  onMessage(listener: (message: ServerMessage) => void): () => void {
    this.#messageListeners.add(listener);
    return () => this.#messageListeners.delete(listener);
  }

  /** Receipts arriving from now on, as `onReceipt` delivers them; the iteration ends when the session closes. */
  receipts(): AsyncIterableIterator<Receipt> {
    const queue: Receipt[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    const offReceipt = this.onReceipt((receipt) => {
      queue.push(receipt);
      wake?.();
    });
    const offState = this.onStateChange(() => wake?.());
    const finish = () => {
      finished = true;
      offReceipt();
      offState();
    };
    const iterator: AsyncIterableIterator<Receipt> = {
      next: async () => {
        while (queue.length === 0 && !finished && this.#state !== 'closed') {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
        const value = queue.shift();
        if (value !== undefined) return { value, done: false };
        finish();
        return { value: undefined, done: true };
      },
      return: async () => {
        finish();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  [Symbol.asyncIterator](): AsyncIterator<Receipt> {
    return this.receipts();
  }

  /**
   * Ends the session: DELETEs it at the gateway (a 404 is fine; gives up after 5 s), then
   * closes the peer connection. Pending publishes reject with SessionClosedError at once.
   * Safe to call more than once.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // DELETE before closing the transport: the relay would otherwise drop the session on
      // its own first, and the DELETE would only find a 404.
      this.#terminate('closed by the client', { closeTransport: false });
      try {
        const url = this.#resource?.url;
        if (url) {
          await deleteSessionResource({
            url,
            token: this.#token,
            fetch: this.#fetch,
            signal: AbortSignal.timeout(5000),
          });
        }
      } finally {
        this.#closeTransport();
      }
    })();
    return this.#closing;
  }

  // -------------------------------------------------------------------------
  // Internal, used by connect().
  // -------------------------------------------------------------------------

  /** @internal */
  attachResource(resource: SessionResource): void {
    this.#resource = resource;
  }

  /** @internal Resolves on the relay's hello; rejects on close, failure or after `timeoutMs`. */
  waitUntilReady(timeoutMs: number): Promise<void> {
    if (this.#state === 'open') return Promise.resolve();
    if (this.#state === 'closed')
      return Promise.reject(new ConnectError(`Session closed: ${this.#closeReason}`));
    if (this.#openFailure) return Promise.reject(this.#openFailure);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#ready = undefined;
        reject(
          new ConnectError('The session did not open in time', {
            details: `no hello within ${timeoutMs} ms (connection ${this.#pc.connectionState}, ICE ${this.#pc.iceConnectionState}, channel ${this.#channel.readyState})`,
          }),
        );
      }, timeoutMs);
      this.#ready = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  // -------------------------------------------------------------------------

  #setState(state: SessionState): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const listener of [...this.#stateListeners]) listener(state);
  }

  #terminate(
    reason: string,
    options: { closeTransport: boolean } = { closeTransport: true },
  ): void {
    if (this.#state !== 'closed') {
      // The relay closing a session it drained: say so, so that logs and apps see why.
      this.#closeReason =
        this.#draining && reason !== 'closed by the client'
          ? `the relay drained the session (relay_draining); ${reason}`
          : reason;
      this.#setState('closed');
      const error = new SessionClosedError(`Session closed: ${reason}`);
      for (const pending of this.#inFlight.splice(0)) pending.reject(error);
      this.#receiptBook.close(error);
      for (const subscription of this.#subscriptions.values()) subscription.finish({ error });
      this.#subscriptions.clear();
      this.#ready?.reject(new ConnectError(`Session closed before it opened: ${reason}`));
      this.#ready = undefined;
    }
    if (options.closeTransport) this.#closeTransport();
  }

  #closeTransport(): void {
    try {
      this.#channel.close();
    } catch {
      // already closed
    }
    this.#pc.close();
  }

  /**
   * Queues `text` to go out in send order. Under v2, the publishes queued in one task leave
   * together as publish lines (docs/protocol.md §5.2.1), as many to a message as the relay's
   * `maxMessageBytes` allows: one data-channel message instead of one per record.
   * `alone`: the text goes out as a message of its own, as it is (sendRaw).
   */
  #send(id: string | null, text: string, alone = false): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      this.#outbox.push({ pending: { id, resolve, reject }, text, alone });
      if (this.#flushing) return;
      this.#flushing = true;
      queueMicrotask(() => void this.#flush());
    });
  }

  /**
   * Sends a `subscribe` or `unsubscribe` as a message of its own, under an id of its own
   * (reserved like a pending publish's, so that answers match), and resolves with its answer.
   */
  async #sendControl(kind: string, message: (id: string) => object): Promise<Answer> {
    let id: string;
    do id = `${kind}${++this.#nextControlId}`;
    while (this.#reservedIds.has(id));
    this.#reservedIds.add(id);
    try {
      return await this.#send(id, JSON.stringify(message(id)), true);
    } finally {
      this.#reservedIds.delete(id);
    }
  }

  /** Subscription.unsubscribe(): resolves once the relay confirmed, or the session closed. */
  async #unsubscribe(subscription: Subscription): Promise<void> {
    const { topic } = subscription;
    let answer: Answer;
    try {
      answer = await this.#sendControl('u', (id) => ({ type: 'unsubscribe', id, topics: [topic] }));
    } catch (error) {
      // A closed session has no subscriptions left: what was asked is done.
      if (error instanceof SessionClosedError) return;
      throw error;
    }
    if (answer.type === 'nack') {
      throw new SubscriptionError({ ...nackFields(answer), topic, action: 'unsubscribe' });
    }
  }

  /** A `subscribed` topic: its Subscription replaces the topic's previous one (§5.9). */
  #startSubscription(fields: SubscribedTopic): Subscription {
    this.#subscriptions.get(fields.topic)?.finish({ reason: 'requested' });
    const subscription = new Subscription(fields, (s) => this.#unsubscribe(s));
    this.#subscriptions.set(fields.topic, subscription);
    return subscription;
  }

  /** Sends the outbox, waiting for `bufferedamountlow` whenever the channel is past its high-water mark. */
  async #flush(): Promise<void> {
    try {
      while (this.#outbox.length > 0) {
        if (this.#state === 'open' && this.#channel.bufferedAmount > this.#highWaterMark) {
          await this.#bufferDrained();
        }
        if (this.#state !== 'open') {
          const error = new SessionClosedError(`Session is ${this.#state}`, {
            details: this.#closeReason,
          });
          for (const outgoing of this.#outbox.splice(0)) outgoing.pending.reject(error);
          return;
        }
        const group = this.#outbox.splice(0, this.#nextMessageLines());
        const text = group.length === 1 ? group[0]!.text : group.map((o) => o.text).join('\n');
        for (const outgoing of group) this.#inFlight.push(outgoing.pending);
        try {
          this.#channel.send(text);
        } catch (error) {
          // They were the last ones in flight.
          this.#inFlight.splice(this.#inFlight.length - group.length, group.length);
          const refused = new StreamAnchorError('The data channel refused the message', {
            details: (error as Error).message,
            cause: error,
          });
          for (const outgoing of group) outgoing.pending.reject(refused);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  /** How many of the outbox's first texts go into the next message. */
  #nextMessageLines(): number {
    const outbox = this.#outbox;
    if (this.#protocol === 'streamanchor.v1' || outbox[0]!.alone) return 1;
    const limit = this.#messageLimit();
    let bytes = utf8Length(outbox[0]!.text);
    let lines = 1;
    while (lines < outbox.length && !outbox[lines]!.alone) {
      const next = utf8Length(outbox[lines]!.text) + 1;
      if (bytes + next > limit) break;
      bytes += next;
      lines += 1;
    }
    return lines;
  }

  /** The largest message the relay takes (its hello) and the transport carries. */
  #messageLimit(): number {
    let limit = this.#hello?.maxMessageBytes ?? LIMITS.maxMessageBytes;
    const transport = this.#pc.sctp?.maxMessageSize;
    if (transport !== undefined && transport > 0 && transport < limit) limit = transport;
    return limit;
  }

  /** Waits until the channel's buffer drops to its low-water mark (or the session closes). */
  #bufferDrained(): Promise<void> {
    return new Promise<void>((resolve) => {
      const check = () => {
        if (
          this.#state !== 'open' ||
          this.#channel.bufferedAmount <= this.#channel.bufferedAmountLowThreshold
        ) {
          this.#channel.removeEventListener('bufferedamountlow', check);
          clearInterval(poll);
          resolve();
        }
      };
      this.#channel.addEventListener('bufferedamountlow', check);
      // A safety net for implementations that do not fire the event reliably.
      const poll = setInterval(check, 50);
      check();
    });
  }

  #onMessage(data: unknown): void {
    if (typeof data !== 'string' || this.#state === 'closed') return;
    const message = parseServerMessage(data);
    if (!message) {
      this.#onUnparsable(data);
      return;
    }
    for (const listener of [...this.#messageListeners]) listener(message);
    switch (message.type) {
      case 'hello':
        if (this.#hello || this.#openFailure) return;
        if (message.protocol !== this.#protocol) {
          this.#protocolMismatch(message.protocol);
          return;
        }
        this.#hello = message;
        if (this.#state === 'connecting') this.#setState('open');
        this.#ready?.resolve();
        this.#ready = undefined;
        return;
      case 'ack':
        this.#onAck(message);
        return;
      case 'acks':
        // v2: the acks of consecutive publishes in one message, each as if an `ack` message.
        for (const ack of message.acks) this.#onAck({ type: 'ack', ...ack });
        return;
      case 'nack':
        // The relay's drain notice answers no message of ours (§5.4.1).
        if (message.id === null && message.code === 'relay_draining') {
          this.#onDraining();
          return;
        }
        this.#takePending(message.id)?.resolve(message);
        return;
      case 'receipt':
        this.#offerReceipt(message.receipt);
        return;
      case 'receipts':
        // v2: one anchor for several records of a batch, each one's receipt as if sent alone.
        for (const record of message.records) this.#offerReceipt(receiptOf(message.anchor, record));
        return;
      case 'anchoring':
        // v2: a later notice of a batch whose records came in `receipts` before: applies to
        // the records of it the book holds (none held, e.g. forgotten: nothing to do).
        for (const receipt of this.#receiptBook.applyAnchor(message.anchor)) this.#deliver(receipt);
        return;
      case 'subscribed': {
        // Started here, not when subscribe() resumes: the topic's records may come in the
        // very next message.
        const subscriptions = message.topics.map((topic) => this.#startSubscription(topic));
        this.#takePending(message.id)?.resolve({ type: 'subscribed', subscriptions });
        return;
      }
      case 'records':
        this.#subscriptions.get(message.topic)?.deliver(message.records);
        return;
      case 'batch':
        this.#subscriptions.get(message.topic)?.deliverBatch(message);
        return;
      case 'unsubscribed':
        for (const topic of message.topics) {
          const subscription = this.#subscriptions.get(topic);
          this.#subscriptions.delete(topic);
          subscription?.finish({ reason: message.reason, after: message.after });
        }
        // With id null the relay ended a subscription on its own: it answers no message.
        if (message.id !== null) this.#takePending(message.id)?.resolve(message);
        return;
    }
  }

  #onDraining(): void {
    if (this.#draining) return;
    this.#draining = true;
    for (const listener of [...this.#drainingListeners]) listener();
  }

  #onAck(ack: AckMessage): void {
    // Tracked before the publish resolves, so finalReceipt(ack.recordId) works at once.
    this.#receiptBook.track(ack.recordId);
    this.#takePending(ack.id)?.resolve(ack);
  }

  /** Keeps `receipt` when it is the record's newest, and delivers it then. */
  #offerReceipt(receipt: Receipt): void {
    if (this.#receiptBook.offer(receipt) === 'current') this.#deliver(receipt);
  }

  #deliver(receipt: Receipt): void {
    for (const listener of [...this.#receiptListeners]) listener(receipt);
  }

  /** The in-flight message an ack/nack answers: the one with its id, else the oldest. */
  #takePending(id: string | null): Pending | undefined {
    if (id !== null) {
      const index = this.#inFlight.findIndex((pending) => pending.id === id);
      if (index !== -1) return this.#inFlight.splice(index, 1)[0];
    }
    return this.#inFlight.shift();
  }

  #onUnparsable(data: string): void {
    // A hello we cannot parse usually means a protocol version mismatch: fail fast.
    try {
      const value = JSON.parse(data) as { type?: unknown; protocol?: unknown };
      if (value?.type === 'hello') this.#protocolMismatch(value.protocol);
    } catch {
      // Not JSON: ignore it, as unknown messages are.
    }
  }

  /** A hello naming another protocol than the channel's: the open fails (connect closes it). */
  #protocolMismatch(relayProtocol: unknown): void {
    if (this.#state !== 'connecting') return;
    this.#openFailure ??= new ConnectError('The relay speaks another protocol version', {
      details: `relay: ${String(relayProtocol)}, client: ${this.#protocol}`,
    });
    this.#ready?.reject(this.#openFailure);
    this.#ready = undefined;
  }
}

function nackFields(nack: NackMessage): {
  code: NackMessage['code'];
  message: string;
  id: string | null;
} {
  return { code: nack.code, message: nack.message, id: nack.id };
}

/** An answer of another kind than the message called for: answers no longer match (a relay bug). */
function unexpectedAnswer(answer: Answer): StreamAnchorError {
  return new StreamAnchorError('The relay answered with an unexpected message', {
    details: `got ${answer.type}`,
  });
}
