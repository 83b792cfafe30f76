import {
  type Ack,
  createReceiptVerifier,
  NackError,
  type ReceiptVerification,
  type StreamAnchorSession,
} from '@streamanchor/client';
import type {
  HelloMessage,
  InfoResponse,
  NackCode,
  Receipt,
  ReceiptStatus,
} from '@streamanchor/protocol';
import { type Client, createPublicClient, http } from 'viem';
import { getBlockNumber } from 'viem/actions';
import { type ConnectionState, describe, SessionConnection } from './connection';
import {
  type ReceivedRecord,
  type SubscribeResult,
  Subscriber,
  type SubscriberState,
  type SubscriptionInfo,
} from './subscriber';

export type { ReceivedRecord, SubscribeResult, SubscriberState, SubscriptionInfo };

/** 'idle' only before the first connect (no token yet). */
export type DemoState = ConnectionState;

/**
 * The record's verdict: sent → acked (or nacked) → receipt (its current receipt is being
 * checked) → verified or failed. `reorged`: the current receipt says the anchoring block
 * left the chain; a new receipt follows. Where the anchoring stands is in `anchoring`.
 */
export type RecordState =
  | 'sent'
  | 'acked'
  | 'nacked'
  | 'receipt'
  | 'verified'
  | 'failed'
  | 'reorged';

export type InvalidKind = 'topic-not-allowed' | 'payload-too-large' | 'malformed-json';

export interface DemoCounts {
  /** Records published with publish() (invalid sends are not counted here). */
  sent: number;
  acked: number;
  /** Every nack: of published records and of sendInvalid(). */
  nacked: number;
  /** Records with at least one receipt. */
  receipts: number;
  /** Records whose current receipt checked out (proof, on-chain anchor, canonical block). */
  verified: number;
  /** Records whose current receipt failed verification (or could not be verified), and publishes that failed without a nack. */
  failed: number;
}

/** Records by where their current receipt's anchoring stands (each record in one at most). */
export type AnchoringCounts = Record<ReceiptStatus, number>;

/** One step of a record's progression: a receipt that became its current one. */
export interface AnchoringStep {
  status: ReceiptStatus;
  revision: number;
  blockNumber: number;
  blockHash: string;
  /** Date.now() when the page received it. */
  at: number;
}

/**
 * Milliseconds from a record's publish() call to each step, as this page saw it (null: not
 * yet): its ack; its delivery to this page's subscriber (matched by recordId); its first
 * receipt (anchored: included, or final at once); its final receipt.
 */
export interface Latency {
  ack: number | null;
  delivered: number | null;
  anchored: number | null;
  final: number | null;
}

export interface RecordLatency extends Latency {
  seq: number;
  recordId: string;
}

export interface DemoRecord {
  /** 1-based position in this page's publish order. */
  seq: number;
  /** Date.now() when publish() was called for it. */
  publishedAt: number;
  latency: Latency;
  /** The publish id sent on the data channel. */
  id: string;
  topic: string;
  state: RecordState;
  recordId: string | null;
  contentHash: string | null;
  acceptedAt: number | null;
  nack: { code: NackCode; message: string } | null;
  /** The current receipt: the highest revision received (the SDK drops older ones). */
  receipt: Receipt | null;
  /** The current receipt's status (null before the first receipt). */
  anchoring: ReceiptStatus | null;
  /**
   * Confirmations of the current anchoring, live: the receipt's count, raised as the chain's
   * head moves (head − blockNumber + 1); 0 when reorged.
   */
  confirmations: number;
  /** Every receipt that became current, oldest first: included → final, or included → reorged → included → final. */
  history: AnchoringStep[];
  /** The verification of the current receipt (of the previous one while it is being checked). */
  verification: ReceiptVerification | null;
  /** Why a record failed without a nack (integrity error, closed session, unreadable chain). */
  error: string | null;
}

export interface NackEntry {
  at: number;
  /** What was sent: `publish #seq` or the invalid kind. */
  source: string;
  code: NackCode;
  message: string;
}

/**
 * The read-only automation surface the demo page installs as `window.streamAnchorDemo`.
 * The end-to-end tests (apps/web/e2e) drive the page through it: keep it stable.
 *
 * - `state`: 'idle' (no token yet) | 'connecting' | 'open' | 'closed' | 'error'.
 * - `error`: the last connection error message, or null.
 * - `counts`: a snapshot { sent, acked, nacked, receipts, verified, failed } (see DemoCounts).
 * - `anchoring`: a snapshot { included, final, reorged }: records by their current receipt's status.
 * - `hello` / `info`: the relay's hello and the gateway's GET /v1/info, once known.
 * - `publish(n, topic = 'demo', options?)`: publishes n records at once; resolves when every
 *   one was acked or refused, with { acked, nacked, failed } for this call. Receipts and their
 *   verification follow asynchronously (watch `counts.receipts` / `counts.verified`).
 *   `options.paddingBytes`: adds a `padding` field of that many characters to each payload
 *   (larger records, e.g. to fill a subscriber's channel).
 * - `records()`: a snapshot of every published record (DemoRecord: seq, id, topic, state,
 *   recordId, contentHash, acceptedAt, nack, receipt, anchoring, confirmations, history,
 *   verification, error).
 * - `nacks()`: a snapshot of every nack received (NackEntry).
 * - `sendInvalid(kind)`: sends one invalid message ('topic-not-allowed' | 'payload-too-large'
 *   | 'malformed-json') and resolves with the relay's nack code; rejects if it was acked.
 * - `connect(token?)` / `close()`: open a session (default: the token field) / end it.
 *
 * The subscriber side, a second session of its own (it may be on another relay):
 * - `subscriber`: a snapshot { state, error, hello, subscription: { topic, startedAfter, head,
 *   position, ended } | null, received (count) }.
 * - `connectSubscriber(token?)` / `closeSubscriber()`: open (default: the token field) / end it.
 * - `subscribe(topic = 'demo', after?)`: subscribes (without `after`: live only); resolves with
 *   { subscribed: true, topic, startedAfter, head }, or { subscribed: false, topic, code,
 *   message } when the relay refused (e.g. `topic_not_allowed`). `unsubscribe()` stops it.
 * - `received()`: every record the subscriber got, in arrival order (ReceivedRecord: topic,
 *   position, recordId, subject, contentHash, acceptedAt, payload, receivedAt).
 * - `latencies()`: per acked record of this page, milliseconds from publish to ack, to
 *   delivery to this page's subscriber, to anchored (first receipt) and to final (RecordLatency).
 */
export interface StreamAnchorDemoApi {
  readonly state: DemoState;
  readonly error: string | null;
  readonly counts: DemoCounts;
  readonly anchoring: AnchoringCounts;
  readonly hello: HelloMessage | null;
  readonly info: InfoResponse | null;
  publish(
    n: number,
    topic?: string,
    options?: PublishOptions,
  ): Promise<{ acked: number; nacked: number; failed: number }>;
  records(): DemoRecord[];
  nacks(): NackEntry[];
  sendInvalid(kind: InvalidKind): Promise<NackCode>;
  connect(token?: string): Promise<void>;
  close(): Promise<void>;
  readonly subscriber: {
    state: SubscriberState;
    error: string | null;
    hello: HelloMessage | null;
    subscription: SubscriptionInfo | null;
    received: number;
  };
  connectSubscriber(token?: string): Promise<void>;
  closeSubscriber(): Promise<void>;
  subscribe(topic?: string, after?: number): Promise<SubscribeResult>;
  unsubscribe(): Promise<void>;
  received(): ReceivedRecord[];
  latencies(): RecordLatency[];
}

export interface PublishOptions {
  /** A `padding` field of this many characters in each payload (none by default). */
  paddingBytes?: number;
}

/** How many deliveries wait for their record's ack at most (others' records never get one). */
const MAX_EARLY_DELIVERIES = 10_000;

type Listener = () => void;

/** The demo's model: one session, its records and their fate. No DOM in here. */
export class Demo {
  info: InfoResponse | null = null;
  readonly counts: DemoCounts = {
    sent: 0,
    acked: 0,
    nacked: 0,
    receipts: 0,
    verified: 0,
    failed: 0,
  };
  readonly anchoring: AnchoringCounts = { included: 0, final: 0, reorged: 0 };
  /** The chain's head as last polled (null before the first poll). */
  head: number | null = null;
  readonly records: DemoRecord[] = [];
  readonly nackLog: NackEntry[] = [];
  /** The subscriber session, side by side with the publisher's. */
  readonly subscriber: Subscriber;
  readonly #connection: SessionConnection;
  #verifier: ReturnType<typeof createReceiptVerifier> | null = null;
  readonly #byRecordId = new Map<string, DemoRecord>();
  /** Receipts that arrived before their ack was processed. */
  readonly #earlyReceipts = new Map<string, Receipt>();
  /** When the subscriber got records whose ack was not processed yet (the relays race). */
  readonly #earlyDeliveries = new Map<string, number>();
  readonly #listeners = new Set<Listener>();
  /** Records whose row must be redrawn. */
  readonly dirty = new Set<DemoRecord>();
  readonly #baseUrl: string;
  #publishSeq = 0;
  #rpc: Client | null = null;
  #headTimer: ReturnType<typeof setInterval> | null = null;

  constructor(baseUrl: string) {
    this.#baseUrl = baseUrl;
    this.#connection = new SessionConnection(baseUrl, {
      prepare: () => this.loadInfo(),
      opened: (session) => {
        session.onReceipt((receipt) => this.#onReceipt(receipt));
        this.#startHeadPolling();
      },
      closed: () => this.#stopHeadPolling(),
      changed: () => this.#changed(),
    });
    this.subscriber = new Subscriber(baseUrl, {
      onRecord: (record) => this.#onDelivered(record),
      changed: () => this.#changed(),
    });
  }

  /** The seq of this page's record `recordId`, or null (another publisher's, or not acked yet). */
  seqOf(recordId: string): number | null {
    return this.#byRecordId.get(recordId)?.seq ?? null;
  }

  /**
   * Connects the subscriber session and, when its token grants subscribing, subscribes to
   * `topic` live (the page's default on open); otherwise closes it again.
   */
  async startSubscriber(token: string, topic: string): Promise<void> {
    await this.subscriber.connect(token);
    if (this.subscriber.state !== 'open') return;
    if (!this.subscriber.canSubscribe) {
      await this.subscriber.close();
      this.subscriber.error = 'The token grants no subscription (its subscribe claim is empty)';
      this.#changed();
      return;
    }
    try {
      await this.subscribeTo(topic);
    } catch (error) {
      // The session closed meanwhile, say: shown on the subscriber's side, not thrown.
      this.subscriber.error = describe(error);
      this.#changed();
    }
  }

  /** Subscribes the subscriber session to `topic`; a refusal goes to the nack log too. */
  async subscribeTo(topic: string, after?: number): Promise<SubscribeResult> {
    const result = await this.subscriber.subscribe(topic, after);
    if (!result.subscribed) this.#logNack(`subscribe ${topic}`, result.code, result.message);
    return result;
  }

  get hello(): HelloMessage | null {
    return this.#connection.session?.hello ?? null;
  }

  /** Called after every change (coalesce rendering yourself). */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(record?: DemoRecord): void {
    if (record) this.dirty.add(record);
    for (const listener of [...this.#listeners]) listener();
  }

  #infoLoad: Promise<InfoResponse> | null = null;

  /** GET /v1/info once (chain id, contract, RPC URL for verification); retried after a failure. */
  loadInfo(): Promise<InfoResponse> {
    this.#infoLoad ??= this.#fetchInfo().catch((error: unknown) => {
      this.#infoLoad = null;
      throw error;
    });
    return this.#infoLoad;
  }

  async #fetchInfo(): Promise<InfoResponse> {
    const response = await fetch(`${this.#baseUrl}/v1/info`, {
      headers: { accept: 'application/json' },
    });
    if (!response.ok) throw new Error(`GET /v1/info answered ${response.status}`);
    this.info = (await response.json()) as InfoResponse;
    this.#verifier = createReceiptVerifier({
      rpcUrl: this.info.rpcUrl,
      expectedContract: this.info.contract,
      expectedChainId: this.info.chainId,
    });
    this.#rpc = createPublicClient({ transport: http(this.info.rpcUrl, { retryCount: 0 }) });
    this.#changed();
    return this.info;
  }

  get state(): DemoState {
    return this.#connection.state;
  }

  get error(): string | null {
    return this.#connection.error;
  }

  connect(token: string): Promise<void> {
    return this.#connection.connect(token);
  }

  close(): Promise<void> {
    return this.#connection.close();
  }

  async publish(
    n: number,
    topic = 'demo',
    options: PublishOptions = {},
  ): Promise<{ acked: number; nacked: number; failed: number }> {
    const session = this.#requireSession();
    const count = Math.max(0, Math.floor(n));
    const paddingBytes = Math.max(0, Math.floor(options.paddingBytes ?? 0));
    const padding = paddingBytes > 0 ? { padding: 'x'.repeat(paddingBytes) } : {};
    const tally = { acked: 0, nacked: 0, failed: 0 };
    const batchStartedAt = Date.now();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const seq = ++this.#publishSeq;
      const id = `r${seq}`;
      const record: DemoRecord = {
        seq,
        publishedAt: Date.now(),
        latency: { ack: null, delivered: null, anchored: null, final: null },
        id,
        topic,
        state: 'sent',
        recordId: null,
        contentHash: null,
        acceptedAt: null,
        nack: null,
        receipt: null,
        anchoring: null,
        confirmations: 0,
        history: [],
        verification: null,
        error: null,
      };
      this.records.push(record);
      this.counts.sent++;
      const payload = {
        seq,
        of: count,
        sentAt: batchStartedAt,
        text: `demo record ${seq}`,
        ...padding,
      };
      pending.push(
        session.publish(topic, payload, { id }).then(
          (ack) => {
            tally.acked++;
            this.#onAck(record, ack);
          },
          (error: unknown) => {
            if (error instanceof NackError) {
              tally.nacked++;
              record.state = 'nacked';
              record.nack = { code: error.code, message: error.details ?? error.shortMessage };
              this.#logNack(`publish #${seq}`, record.nack.code, record.nack.message);
            } else {
              tally.failed++;
              record.error = describe(error);
              this.#setState(record, 'failed');
            }
            this.#changed(record);
          },
        ),
      );
    }
    this.#changed();
    await Promise.all(pending);
    return tally;
  }

  async sendInvalid(kind: InvalidKind): Promise<NackCode> {
    const session = this.#requireSession();
    const hello = session.hello!;
    let answer: Awaited<ReturnType<StreamAnchorSession['sendRaw']>>;
    switch (kind) {
      case 'topic-not-allowed': {
        if (hello.topics.includes('*'))
          throw new Error('The token grants every topic: none is refused');
        const topic = `not-granted-${Math.random().toString(36).slice(2, 8)}`;
        answer = await session.sendRaw(
          JSON.stringify({
            type: 'publish',
            id: `invalid-topic`,
            topic,
            payload: { demo: 'not granted' },
          }),
        );
        break;
      }
      case 'payload-too-large': {
        const payload = { filler: 'x'.repeat(hello.maxPayloadBytes + 1) };
        answer = await session.sendRaw(
          JSON.stringify({
            type: 'publish',
            id: 'invalid-size',
            topic: hello.topics[0] ?? 'demo',
            payload,
          }),
        );
        break;
      }
      case 'malformed-json':
        answer = await session.sendRaw('{"type":"publish","id":"invalid-json", this is not JSON');
        break;
      default:
        throw new Error(`Unknown invalid kind: ${String(kind)}`);
    }
    if (answer.type === 'ack') {
      throw new Error(`The relay accepted the "${kind}" message (record ${answer.recordId})`);
    }
    this.#logNack(kind, answer.code, answer.message);
    return answer.code;
  }

  #requireSession(): StreamAnchorSession {
    return this.#connection.requireOpen();
  }

  #logNack(source: string, code: NackCode, message: string): void {
    this.counts.nacked++;
    this.nackLog.push({ at: Date.now(), source, code, message });
    this.#changed();
  }

  /** Sets a record's state, keeping `counts.verified` and `counts.failed` per record. */
  #setState(record: DemoRecord, state: RecordState): void {
    if (record.state === state) return;
    if (record.state === 'verified') this.counts.verified--;
    if (record.state === 'failed') this.counts.failed--;
    record.state = state;
    if (state === 'verified') this.counts.verified++;
    if (state === 'failed') this.counts.failed++;
  }

  #onAck(record: DemoRecord, ack: Ack): void {
    this.#setState(record, 'acked');
    record.recordId = ack.recordId;
    record.contentHash = ack.contentHash;
    record.acceptedAt = ack.acceptedAt;
    this.counts.acked++;
    record.latency.ack = Date.now() - record.publishedAt;
    this.#byRecordId.set(ack.recordId, record);
    const deliveredAt = this.#earlyDeliveries.get(ack.recordId);
    if (deliveredAt !== undefined) {
      this.#earlyDeliveries.delete(ack.recordId);
      record.latency.delivered = deliveredAt - record.publishedAt;
    }
    this.#changed(record);
    const early = this.#earlyReceipts.get(ack.recordId);
    if (early) {
      this.#earlyReceipts.delete(ack.recordId);
      this.#onReceipt(early);
    }
  }

  /** The SDK delivers each record's receipts with increasing revision; each one becomes current. */
  #onReceipt(receipt: Receipt): void {
    const record = this.#byRecordId.get(receipt.recordId);
    if (!record) {
      const early = this.#earlyReceipts.get(receipt.recordId);
      if (!early || early.revision < receipt.revision)
        this.#earlyReceipts.set(receipt.recordId, receipt);
      return;
    }
    const previous = record.receipt;
    if (previous && previous.revision >= receipt.revision) return;
    if (!previous) this.counts.receipts++;
    const since = Date.now() - record.publishedAt;
    if (receipt.status !== 'reorged') record.latency.anchored ??= since;
    if (receipt.status === 'final') record.latency.final ??= since;
    if (record.anchoring) this.anchoring[record.anchoring]--;
    this.anchoring[receipt.status]++;
    record.receipt = receipt;
    record.anchoring = receipt.status;
    record.confirmations = receipt.status === 'reorged' ? 0 : receipt.confirmations;
    this.#raiseConfirmations(record);
    record.history.push({
      status: receipt.status,
      revision: receipt.revision,
      blockNumber: receipt.blockNumber,
      blockHash: receipt.blockHash,
      at: Date.now(),
    });
    if (receipt.status === 'reorged') {
      record.error = null;
      this.#setState(record, 'reorged');
    } else if (
      !(
        record.state === 'verified' &&
        previous?.blockHash === receipt.blockHash &&
        previous.txHash === receipt.txHash
      )
    ) {
      // A new anchoring (or a first one) is unchecked until verified; the same anchoring
      // growing final keeps its verdict while it is checked again.
      this.#setState(record, 'receipt');
    }
    this.#changed(record);
    void this.#verify(record, receipt);
  }

  /** A record reached the subscriber: the delivery latency of this page's own records. */
  #onDelivered(delivered: ReceivedRecord): void {
    const record = this.#byRecordId.get(delivered.recordId);
    if (record) {
      record.latency.delivered ??= delivered.receivedAt - record.publishedAt;
      this.dirty.add(record);
      return;
    }
    this.#earlyDeliveries.set(delivered.recordId, delivered.receivedAt);
    if (this.#earlyDeliveries.size > MAX_EARLY_DELIVERIES) {
      const oldest = this.#earlyDeliveries.keys().next().value;
      if (oldest !== undefined) this.#earlyDeliveries.delete(oldest);
    }
  }

  async #verify(record: DemoRecord, receipt: Receipt): Promise<void> {
    let verification: ReceiptVerification | null = null;
    let error: string | null = null;
    try {
      if (!this.#verifier) throw new Error('No chain info (GET /v1/info failed): cannot verify');
      verification = await this.#verifier.verify(receipt, {
        expectedContentHash: record.contentHash ?? undefined,
      });
    } catch (caught) {
      error = describe(caught);
    }
    // A newer receipt arrived meanwhile: its own check decides.
    if (record.receipt !== receipt) return;
    record.verification = verification;
    record.error = error;
    if (verification) this.#raiseConfirmations(record, verification.onChain.confirmations);
    // A reorged receipt is never valid: the check only shows that its block is gone.
    if (receipt.status !== 'reorged')
      this.#setState(record, verification?.valid ? 'verified' : 'failed');
    this.#changed(record);
  }

  /** Raises the record's confirmations to what the chain (or a verification) shows. */
  #raiseConfirmations(record: DemoRecord, fromChain?: number): void {
    const receipt = record.receipt;
    if (!receipt || receipt.status === 'reorged') return;
    let live = fromChain ?? 0;
    if (this.head !== null && this.head >= receipt.blockNumber)
      live = Math.max(live, this.head - receipt.blockNumber + 1);
    if (live > record.confirmations) record.confirmations = live;
  }

  #startHeadPolling(): void {
    this.#stopHeadPolling();
    let polling = false;
    this.#headTimer = setInterval(() => {
      if (polling || !this.#rpc || this.anchoring.included === 0) return;
      polling = true;
      getBlockNumber(this.#rpc, { cacheTime: 0 })
        .then((head) => {
          this.head = Number(head);
          for (const record of this.records) {
            if (record.anchoring !== 'included') continue;
            const before = record.confirmations;
            this.#raiseConfirmations(record);
            if (record.confirmations !== before) this.dirty.add(record);
          }
          this.#changed();
        })
        .catch(() => undefined) // the next tick asks again
        .finally(() => {
          polling = false;
        });
    }, 1000);
  }

  #stopHeadPolling(): void {
    if (this.#headTimer !== null) clearInterval(this.#headTimer);
    this.#headTimer = null;
  }

  /** The object installed as window.streamAnchorDemo (read-only; snapshots, never live state). */
  api(): StreamAnchorDemoApi {
    const demo = this;
    const clone = <T>(value: T): T => structuredClone(value);
    return Object.freeze({
      get state() {
        return demo.state;
      },
      get error() {
        return demo.error;
      },
      get counts() {
        return { ...demo.counts };
      },
      get anchoring() {
        return { ...demo.anchoring };
      },
      get hello() {
        return demo.hello ? clone(demo.hello) : null;
      },
      get info() {
        return demo.info ? clone(demo.info) : null;
      },
      publish: (n: number, topic?: string, options?: PublishOptions) =>
        demo.publish(n, topic, options),
      records: () => clone(demo.records),
      nacks: () => clone(demo.nackLog),
      sendInvalid: (kind: InvalidKind) => demo.sendInvalid(kind),
      connect: async (token?: string) => {
        const value =
          token ?? (document.getElementById('token') as HTMLInputElement | null)?.value ?? '';
        await demo.connect(value.trim());
      },
      close: () => demo.close(),
      get subscriber() {
        const side = demo.subscriber;
        return {
          state: side.state,
          error: side.error,
          hello: side.hello ? clone(side.hello) : null,
          subscription: side.subscription ? clone(side.subscription) : null,
          received: side.received.length,
        };
      },
      connectSubscriber: async (token?: string) => {
        const value =
          token ?? (document.getElementById('token') as HTMLInputElement | null)?.value ?? '';
        await demo.subscriber.connect(value.trim());
      },
      closeSubscriber: () => demo.subscriber.close(),
      subscribe: (topic = 'demo', after?: number) => demo.subscribeTo(topic, after),
      unsubscribe: () => demo.subscriber.unsubscribe(),
      received: () => clone(demo.subscriber.received),
      latencies: () =>
        demo.records
          .filter((record) => record.recordId !== null)
          .map((record) => ({
            seq: record.seq,
            recordId: record.recordId as string,
            ...record.latency,
          })),
    });
  }
}
