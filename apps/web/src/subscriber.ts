import {
  connect,
  type StreamAnchorSession,
  type SubscribedRecord,
  type Subscription,
  type SubscriptionEnd,
  SubscriptionError,
} from '@streamanchor/client';
import type { HelloMessage, NackCode } from '@streamanchor/protocol';

/** 'idle' only before the first connect. */
export type SubscriberState = 'idle' | 'connecting' | 'open' | 'closed' | 'error';

/** A record the subscriber session received, as the SDK delivered it. */
export interface ReceivedRecord extends SubscribedRecord {
  /** Date.now() when the page got it. */
  receivedAt: number;
}

export type SubscribeResult =
  | { subscribed: true; topic: string; startedAfter: number; head: number }
  | { subscribed: false; topic: string; code: NackCode; message: string };

export interface SubscriptionInfo {
  topic: string;
  startedAfter: number;
  head: number;
  /** The last position received. */
  position: number;
  /** How it ended (null while live). */
  ended: SubscriptionEnd | { reason: 'session_closed'; after: number } | null;
}

/**
 * The subscriber side of the demo: a session of its own (its own connect, so it may land on
 * another relay than the publisher's) subscribed to one topic at a time. No DOM in here.
 */
export class Subscriber {
  state: SubscriberState = 'idle';
  error: string | null = null;
  /** Every record received, in arrival order (over every subscription of this page). */
  readonly received: ReceivedRecord[] = [];
  subscription: SubscriptionInfo | null = null;
  #session: StreamAnchorSession | null = null;
  #current: Subscription | null = null;
  readonly #baseUrl: string;
  readonly #onRecord: (record: ReceivedRecord) => void;
  readonly #changed: () => void;

  constructor(baseUrl: string, hooks: { onRecord(record: ReceivedRecord): void; changed(): void }) {
    this.#baseUrl = baseUrl;
    this.#onRecord = hooks.onRecord;
    this.#changed = hooks.changed;
  }

  get hello(): HelloMessage | null {
    return this.#session?.hello ?? null;
  }

  /** Whether the session's token grants subscribing to anything. */
  get canSubscribe(): boolean {
    return (this.hello?.subscribe?.length ?? 0) > 0;
  }

  async connect(token: string): Promise<void> {
    if (this.state === 'connecting' || this.state === 'open') await this.close();
    this.state = 'connecting';
    this.error = null;
    this.#changed();
    try {
      const session = await connect({ baseUrl: this.#baseUrl, token });
      this.#session = session;
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

  /** Subscribes to `topic` (replacing the current subscription); a refusal is a result, not an error. */
  async subscribe(topic: string, after?: number): Promise<SubscribeResult> {
    const session = this.#session;
    if (!session || this.state !== 'open') throw new Error(`Not connected (state ${this.state})`);
    let subscription: Subscription;
    try {
      subscription = await session.subscribe(topic, after === undefined ? {} : { after });
    } catch (error) {
      if (error instanceof SubscriptionError) {
        return {
          subscribed: false,
          topic,
          code: error.code,
          message: error.details ?? error.shortMessage,
        };
      }
      throw error;
    }
    const info: SubscriptionInfo = {
      topic,
      startedAfter: subscription.startedAfter,
      head: subscription.head,
      position: subscription.position,
      ended: null,
    };
    this.#current = subscription;
    this.subscription = info;
    subscription.onRecord((record) => {
      const received: ReceivedRecord = { ...record, receivedAt: Date.now() };
      info.position = record.position;
      this.received.push(received);
      this.#onRecord(received);
      this.#changed();
    });
    subscription.ended.then(
      (end) => {
        info.ended = end;
        this.#changed();
      },
      () => {
        info.ended = { reason: 'session_closed', after: subscription.position };
        this.#changed();
      },
    );
    this.#changed();
    return { subscribed: true, topic, startedAfter: info.startedAfter, head: info.head };
  }

  async unsubscribe(): Promise<void> {
    await this.#current?.unsubscribe();
  }
}

export function describe(error: unknown): string {
  if (error && typeof error === 'object' && 'shortMessage' in error) {
    const { shortMessage, details } = error as { shortMessage: string; details?: string };
    return details ? `${shortMessage} (${details})` : shortMessage;
  }
  return error instanceof Error ? error.message : String(error);
}
