import {
  type Ack,
  connect,
  createReceiptVerifier,
  NackError,
  type ReceiptVerification,
  type StreamAnchorSession,
} from '@streamanchor/client';
import type { HelloMessage, InfoResponse, NackCode, Receipt } from '@streamanchor/protocol';

/** 'idle' only before the first connect (no token yet). */
export type DemoState = 'idle' | 'connecting' | 'open' | 'closed' | 'error';

export type RecordState = 'sent' | 'acked' | 'nacked' | 'receipt' | 'verified' | 'failed';

export type InvalidKind = 'topic-not-allowed' | 'payload-too-large' | 'malformed-json';

export interface DemoCounts {
  /** Records published with publish() (invalid sends are not counted here). */
  sent: number;
  acked: number;
  /** Every nack: of published records and of sendInvalid(). */
  nacked: number;
  receipts: number;
  /** Receipts whose proof and on-chain anchor checked out. */
  verified: number;
  /** Receipts that failed verification (or could not be verified), and publishes that failed without a nack. */
  failed: number;
}

export interface DemoRecord {
  /** 1-based position in this page's publish order. */
  seq: number;
  /** The publish id sent on the data channel. */
  id: string;
  topic: string;
  state: RecordState;
  recordId: string | null;
  contentHash: string | null;
  acceptedAt: number | null;
  nack: { code: NackCode; message: string } | null;
  receipt: Receipt | null;
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
 * - `hello` / `info`: the relay's hello and the gateway's GET /v1/info, once known.
 * - `publish(n, topic = 'demo')`: publishes n records at once; resolves when every one was
 *   acked or refused, with { acked, nacked, failed } for this call. Receipts and their
 *   verification follow asynchronously (watch `counts.receipts` / `counts.verified`).
 * - `records()`: a snapshot of every published record (DemoRecord: seq, id, topic, state,
 *   recordId, contentHash, acceptedAt, nack, receipt, verification, error).
 * - `nacks()`: a snapshot of every nack received (NackEntry).
 * - `sendInvalid(kind)`: sends one invalid message ('topic-not-allowed' | 'payload-too-large'
 *   | 'malformed-json') and resolves with the relay's nack code; rejects if it was acked.
 * - `connect(token?)` / `close()`: open a session (default: the token field) / end it.
 */
export interface StreamAnchorDemoApi {
  readonly state: DemoState;
  readonly error: string | null;
  readonly counts: DemoCounts;
  readonly hello: HelloMessage | null;
  readonly info: InfoResponse | null;
  publish(n: number, topic?: string): Promise<{ acked: number; nacked: number; failed: number }>;
  records(): DemoRecord[];
  nacks(): NackEntry[];
  sendInvalid(kind: InvalidKind): Promise<NackCode>;
  connect(token?: string): Promise<void>;
  close(): Promise<void>;
}

type Listener = () => void;

/** The demo's model: one session, its records and their fate. No DOM in here. */
export class Demo {
  state: DemoState = 'idle';
  error: string | null = null;
  info: InfoResponse | null = null;
  readonly counts: DemoCounts = {
    sent: 0,
    acked: 0,
    nacked: 0,
    receipts: 0,
    verified: 0,
    failed: 0,
  };
  readonly records: DemoRecord[] = [];
  readonly nackLog: NackEntry[] = [];
  #session: StreamAnchorSession | null = null;
  #verifier: ReturnType<typeof createReceiptVerifier> | null = null;
  readonly #byRecordId = new Map<string, DemoRecord>();
  /** Receipts that arrived before their ack was processed. */
  readonly #earlyReceipts = new Map<string, Receipt>();
  readonly #listeners = new Set<Listener>();
  /** Records whose row must be redrawn. */
  readonly dirty = new Set<DemoRecord>();
  readonly #baseUrl: string;
  #publishSeq = 0;

  constructor(baseUrl: string) {
    this.#baseUrl = baseUrl;
  }

  get hello(): HelloMessage | null {
    return this.#session?.hello ?? null;
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
    this.#changed();
    return this.info;
  }

  async connect(token: string): Promise<void> {
    if (this.state === 'connecting' || this.state === 'open') await this.close();
    this.state = 'connecting';
    this.error = null;
    this.#changed();
    try {
      await this.loadInfo();
      const session = await connect({ baseUrl: this.#baseUrl, token });
      this.#session = session;
      session.onReceipt((receipt) => this.#onReceipt(receipt));
      session.onStateChange((state) => {
        if (state === 'closed' && this.#session === session) {
          this.state = 'closed';
          this.#changed();
        }
      });
      this.state = session.state === 'open' ? 'open' : 'closed';
    } catch (error) {
      this.state = 'error';
      this.error = describe(error);
    }
    this.#changed();
  }

  async close(): Promise<void> {
    const session = this.#session;
    if (!session) return;
    this.state = 'closed';
    this.#changed();
    await session.close().catch(() => undefined);
  }

  async publish(
    n: number,
    topic = 'demo',
  ): Promise<{ acked: number; nacked: number; failed: number }> {
    const session = this.#requireSession();
    const count = Math.max(0, Math.floor(n));
    const tally = { acked: 0, nacked: 0, failed: 0 };
    const batchStartedAt = Date.now();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const seq = ++this.#publishSeq;
      const id = `r${seq}`;
      const record: DemoRecord = {
        seq,
        id,
        topic,
        state: 'sent',
        recordId: null,
        contentHash: null,
        acceptedAt: null,
        nack: null,
        receipt: null,
        verification: null,
        error: null,
      };
      this.records.push(record);
      this.counts.sent++;
      const payload = { seq, of: count, sentAt: batchStartedAt, text: `demo record ${seq}` };
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
              record.state = 'failed';
              record.error = describe(error);
              this.counts.failed++;
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
    if (!this.#session || this.state !== 'open')
      throw new Error(`Not connected (state ${this.state})`);
    return this.#session;
  }

  #logNack(source: string, code: NackCode, message: string): void {
    this.counts.nacked++;
    this.nackLog.push({ at: Date.now(), source, code, message });
    this.#changed();
  }

  #onAck(record: DemoRecord, ack: Ack): void {
    record.state = 'acked';
    record.recordId = ack.recordId;
    record.contentHash = ack.contentHash;
    record.acceptedAt = ack.acceptedAt;
    this.counts.acked++;
    this.#byRecordId.set(ack.recordId, record);
    this.#changed(record);
    const early = this.#earlyReceipts.get(ack.recordId);
    if (early) {
      this.#earlyReceipts.delete(ack.recordId);
      this.#onReceipt(early);
    }
  }

  #onReceipt(receipt: Receipt): void {
    const record = this.#byRecordId.get(receipt.recordId);
    if (!record) {
      this.#earlyReceipts.set(receipt.recordId, receipt);
      return;
    }
    if (record.receipt) return;
    record.receipt = receipt;
    record.state = 'receipt';
    this.counts.receipts++;
    this.#changed(record);
    void this.#verify(record, receipt);
  }

  async #verify(record: DemoRecord, receipt: Receipt): Promise<void> {
    try {
      if (!this.#verifier) throw new Error('No chain info (GET /v1/info failed): cannot verify');
      const result = await this.#verifier.verify(receipt, {
        expectedContentHash: record.contentHash ?? undefined,
      });
      record.verification = result;
      record.state = result.valid ? 'verified' : 'failed';
      if (result.valid) this.counts.verified++;
      else this.counts.failed++;
    } catch (error) {
      record.state = 'failed';
      record.error = describe(error);
      this.counts.failed++;
    }
    this.#changed(record);
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
      get hello() {
        return demo.hello ? clone(demo.hello) : null;
      },
      get info() {
        return demo.info ? clone(demo.info) : null;
      },
      publish: (n: number, topic?: string) => demo.publish(n, topic),
      records: () => clone(demo.records),
      nacks: () => clone(demo.nackLog),
      sendInvalid: (kind: InvalidKind) => demo.sendInvalid(kind),
      connect: async (token?: string) => {
        const value =
          token ?? (document.getElementById('token') as HTMLInputElement | null)?.value ?? '';
        await demo.connect(value.trim());
      },
      close: () => demo.close(),
    });
  }
}

function describe(error: unknown): string {
  if (error && typeof error === 'object' && 'shortMessage' in error) {
    const { shortMessage, details } = error as { shortMessage: string; details?: string };
    return details ? `${shortMessage} (${details})` : shortMessage;
  }
  return error instanceof Error ? error.message : String(error);
}
