import {
  type SubscribedRecord,
  type Subscription,
  type SubscriptionEnd,
  SubscriptionError,
} from '@streamanchor/client';
import type { HelloMessage, NackCode } from '@streamanchor/protocol';
import { type ConnectionState, SessionConnection } from './connection';

/** 'idle' only before the first connect. */
export type SubscriberState = ConnectionState;

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
  /** Every record received, in arrival order (over every subscription of this page). */
  readonly received: ReceivedRecord[] = [];
  subscription: SubscriptionInfo | null = null;
  readonly #connection: SessionConnection;
  #current: Subscription | null = null;
  readonly #onRecord: (record: ReceivedRecord) => void;
  readonly #changed: () => void;

  constructor(baseUrl: string, hooks: { onRecord(record: ReceivedRecord): void; changed(): void }) {
    this.#connection = new SessionConnection(baseUrl, { changed: hooks.changed });
    this.#onRecord = hooks.onRecord;
    this.#changed = hooks.changed;
  }

  get state(): SubscriberState {
    return this.#connection.state;
  }

  get error(): string | null {
    return this.#connection.error;
  }

  /** What the view shows as this side's problem (also set by the demo, e.g. no grant). */
  set error(message: string | null) {
    this.#connection.error = message;
  }

  get hello(): HelloMessage | null {
    return this.#connection.session?.hello ?? null;
  }

  /** Whether the session's token grants subscribing to anything. */
  get canSubscribe(): boolean {
    return (this.hello?.subscribe?.length ?? 0) > 0;
  }

  connect(token: string): Promise<void> {
    return this.#connection.connect(token);
  }

  close(): Promise<void> {
    return this.#connection.close();
  }

  /** Subscribes to `topic` (replacing the current subscription); a refusal is a result, not an error. */
  async subscribe(topic: string, after?: number): Promise<SubscribeResult> {
    const session = this.#connection.requireOpen();
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
