import { setTimeout as sleep } from 'node:timers/promises';
import {
  ANCHORING_FIELD,
  compareEntryIds,
  entryIdOf,
  type Keys,
  positionOfEntryId,
  STREAM_FIELD,
  type StreamEntryFields,
  streamEntry,
  watchTopics,
} from '@streamanchor/bus';
import {
  LIMITS,
  type PositionRanges,
  type SubscribedTopic,
  type UnsubscribeReason,
  utf8Length,
} from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { Redis } from 'ioredis';

/** What the hub needs of a session that subscribes. */
export interface Subscriber {
  readonly id: string;
  /** Largest message the subscriber's channel takes (UTF-8 bytes). */
  readonly recordsMessageLimit: number;
  /** Whether the channel takes another records message now (its buffer is below high water). */
  canTake(): boolean;
  /** Sends one serialized `records` or `batch` message; false when the session cannot take it (closed). */
  deliver(text: string): boolean;
  /** The relay ended a subscription on its own (`unsubscribed` with id null). */
  subscriptionEnded(topic: string, reason: UnsubscribeReason, after: number): void;
}

/** A record older than a topic stream holds, read from Postgres (`records.position`). */
export interface HistoryRecord extends StreamEntryFields {
  position: number;
}

/** Reads a topic's stored records after a position, in position order (at most `limit`). */
export type ReadHistory = (
  topic: string,
  after: number,
  limit: number,
) => Promise<readonly HistoryRecord[]>;

export interface SubscriptionHubDeps {
  /** For stream reads that do not block (heads, catch-up ranges, CLIENT UNBLOCK). */
  redis: Redis;
  /** A connection of its own, for the blocking XREAD of every subscribed topic. */
  reader: Redis;
  keys: Keys;
  logger: Logger;
  /** Reads what a topic stream no longer holds; without it, such a subscription ends. */
  history?: ReadHistory;
  /**
   * How long a subscription waits for history to have the records it misses (queued, not
   * yet stored by the writer) before it ends with `history_unavailable` (default 30,000 ms).
   */
  historyWaitMs?: number;
  /** Entries one XREAD or catch-up read takes per topic (default 500). */
  readCount?: number;
  /**
   * How long a watch of a topic lasts unless refreshed (default 60,000 ms): the relay asks
   * for its subscribed topics' records in their streams (`watchTopics`), and refreshes every
   * sixth of it. A watch that lapsed anyway (Redis away that long) leaves a gap in the
   * stream, which subscribers get from history.
   */
  watchTtlMs?: number;
  /**
   * How long the reader blocks when nothing arrives (default 1,000 ms). A new topic is read
   * at once (CLIENT UNBLOCK), or at the latest after this.
   */
  blockMs?: number;
}

export interface SubscriptionHubStats {
  topics: number;
  subscriptions: number;
  /** Records handed to subscribers' channels (one per subscriber). */
  recordsDelivered: number;
  /** Subscriptions that fell behind (their channel was full) or resumed from the past. */
  catchUps: number;
  /** Records read from history (Postgres) for subscribers behind the streams. */
  historyRecords: number;
  /** Subscriptions the relay ended (`history_unavailable`). */
  ended: number;
  /** `batch` messages sent (one per subscriber). */
  batchNotices: number;
}

export interface SubscriptionHub {
  /**
   * Registers subscriptions starting after `after` (default: the topic's newest position, so
   * live from the next record). Nothing is delivered until `activate`: the session answers
   * `subscribed` first. Re-subscribing a topic starts it over from the new `after`.
   */
  subscribe(
    subscriber: Subscriber,
    requests: readonly SubscriptionRequest[],
  ): Promise<SubscribedTopic[]>;
  /** Starts delivery of subscriptions registered by `subscribe`. */
  activate(subscriber: Subscriber, topics: readonly string[]): void;
  unsubscribe(subscriber: Subscriber, topics: readonly string[]): void;
  /** Topics `subscriber` is subscribed to. */
  topicsOf(subscriber: Subscriber): string[];
  /** Ends every subscription of a session that closed. */
  drop(subscriber: Subscriber): void;
  start(): void;
  close(): Promise<void>;
  stats(): SubscriptionHubStats;
}

/** One topic of a `subscribe` (§5.9). */
export interface SubscriptionRequest {
  topic: string;
  /** Deliver the records after this position (default: the topic's newest). */
  after?: number | undefined;
  /** Replay the kept anchoring changes of batches holding positions after this (default: `after`). */
  anchoringAfter?: number | undefined;
}

type Mode = 'pending' | 'live' | 'catchup';

interface Subscription {
  subscriber: Subscriber;
  topic: string;
  /** The last position delivered (or the one delivery starts after). */
  cursor: number;
  /** Anchoring changes of batches holding no position after this one are not sent. */
  anchoringAfter: number;
  /**
   * The id of the topic's anchoring stream entry up to which this subscription has been sent
   * (or did not need) every change. Behind the reader's (`TopicState.anchoringRead`), it gets
   * the rest from the stream before it is live: so a change comes after the records it names,
   * and one that met a full channel comes once the channel drained.
   */
  noticesThrough: string;
  mode: Mode;
  active: boolean;
  /** Since when history has had nothing for the records this subscription misses (ms). */
  historyEmptySince?: number;
}

interface TopicState {
  topic: string;
  key: string;
  /** The newest position the reader has dispatched. */
  dispatched: number;
  /** The topic's anchoring stream, and the id of the last entry the reader took from it. */
  anchoringKey: string;
  anchoringRead: string;
  subscriptions: Set<Subscription>;
}

/** One serialized record: `{"position":N,…}`. */
interface Item {
  position: number;
  text: string;
}

/** A serialized `records` message: its first and last positions, and how many records. */
interface Message {
  text: string;
  first: number;
  last: number;
  count: number;
}

/** How long a catch-up waits for a full channel to drain before looking again. */
const DRAIN_POLL_MS = 10;
/** How often a subscription looks again at history that had nothing for it. */
const HISTORY_POLL_MS = 250;
/** Pause of the reader after a Redis error, so that a dead Redis is not spun on. */
const READER_RETRY_MS = 500;

/**
 * Delivers the records of topic streams (`addRecordBatch` writes them) to the subscribed
 * sessions of this relay: one blocking XREAD over every subscribed topic, each batch
 * serialized once per topic and sent to every subscriber that is in step ("live"). A
 * subscriber whose channel is full is not waited for: it drops out of step and catches up
 * on its own from the stream (XRANGE from its cursor) once it drains, then from Postgres
 * (`history`) for what the stream no longer holds. So a slow subscriber costs the others
 * and the publishers nothing but its own reads, and its order and completeness hold.
 */
export function createSubscriptionHub(deps: SubscriptionHubDeps): SubscriptionHub {
  const { redis, reader, keys, logger } = deps;
  const readCount = deps.readCount ?? 500;
  const blockMs = deps.blockMs ?? 1000;
  const watchTtlMs = deps.watchTtlMs ?? 60_000;
  const historyWaitMs = deps.historyWaitMs ?? 30_000;
  let refresher: NodeJS.Timeout | undefined;
  const topics = new Map<string, TopicState>();
  /** Topic states being created (their head is being read). */
  const opening = new Map<string, Promise<TopicState>>();
  const bySubscriber = new Map<Subscriber, Map<string, Subscription>>();
  const keyPrefix = keys.topicStream('');
  const stats = { recordsDelivered: 0, catchUps: 0, historyRecords: 0, ended: 0, batchNotices: 0 };
  const anchoringPrefix = keys.topicAnchoring('');
  let closed = false;
  let readerId: number | undefined;
  let blocked = false;
  let wake: (() => void) | undefined;
  let loop: Promise<void> | undefined;

  function itemOf(position: number, entry: string): Item {
    // The entry is `{"recordId":…}` (streamEntry): the position goes in front.
    return { position, text: `{"position":${position},${entry.slice(1)}` };
  }

  /**
   * Serializes items into `records` messages of at most `limit` bytes (at most
   * LIMITS.maxReceiptsMessageBytes; a record larger than that alone still gets a message).
   */
  function messagesOf(topic: string, items: readonly Item[], limit: number): Message[] {
    const maxBytes = Math.min(limit, LIMITS.maxReceiptsMessageBytes);
    const head = `{"type":"records","topic":"${topic}","records":[`;
    const frame = head.length + 2;
    const messages: Message[] = [];
    let parts: string[] = [];
    let bytes = frame;
    let first = 0;
    let last = 0;
    const flush = () => {
      messages.push({ text: `${head}${parts.join(',')}]}`, first, last, count: parts.length });
      parts = [];
      bytes = frame;
    };
    for (const item of items) {
      const size = utf8Length(item.text);
      if (parts.length > 0 && bytes + 1 + size > maxBytes) flush();
      if (parts.length === 0) first = item.position;
      bytes += (parts.length > 0 ? 1 : 0) + size;
      parts.push(item.text);
      last = item.position;
    }
    if (parts.length > 0) flush();
    return messages;
  }

  /**
   * Sends `messages` (after the subscription's cursor) while the channel takes them; returns
   * false when it stopped at a full channel.
   */
  function sendWhileRoom(subscription: Subscription, messages: readonly Message[]): boolean {
    for (const message of messages) {
      // Callers pass messages that start after the cursor, or wholly at or before it.
      if (message.last <= subscription.cursor) continue;
      if (!subscription.subscriber.canTake()) return false;
      if (!subscription.subscriber.deliver(message.text)) return false;
      subscription.cursor = message.last;
      stats.recordsDelivered += message.count;
    }
    return true;
  }

  /** Delivers one XREAD batch of a topic to its subscriptions that are in step. */
  function dispatch(state: TopicState, entries: readonly [string, string[]][]): void {
    const items: Item[] = [];
    for (const [id, fields] of entries) {
      const position = positionOfEntryId(id);
      if (position <= state.dispatched) continue;
      const entry = fields[1];
      if (fields[0] !== STREAM_FIELD || entry === undefined) continue;
      items.push(itemOf(position, entry));
    }
    if (items.length === 0) return;
    if (items[0]!.position > state.dispatched + 1) {
      // Positions missing from the stream (a watch that lapsed): whoever is in step gets
      // them from history first.
      logger.warn(
        { topic: state.topic, from: state.dispatched + 1, to: items[0]!.position - 1 },
        'topic stream has a gap; subscribers catch up from history',
      );
      for (const subscription of state.subscriptions)
        if (subscription.mode === 'live') startCatchUp(subscription);
    }
    // Serialized once per message size limit (one, usually) for every subscriber in step.
    const byLimit = new Map<number, Message[]>();
    for (const subscription of state.subscriptions) {
      if (subscription.mode !== 'live') continue;
      if (subscription.cursor < state.dispatched) {
        // Not in step (it would skip what lies between): it reads those first.
        startCatchUp(subscription);
        continue;
      }
      const limit = subscription.subscriber.recordsMessageLimit;
      let messages = byLimit.get(limit);
      if (!messages) {
        messages = messagesOf(state.topic, items, limit);
        byLimit.set(limit, messages);
      }
      // A subscription that just came back in step may already have some of them.
      const mine =
        subscription.cursor < items[0]!.position
          ? messages
          : messagesOf(
              state.topic,
              items.filter((item) => item.position > subscription.cursor),
              limit,
            );
      if (!sendWhileRoom(subscription, mine)) startCatchUp(subscription);
    }
    state.dispatched = items[items.length - 1]!.position;
  }

  /** A `batch` message of an anchoring stream entry, and the newest position it names. */
  function noticeOf(
    topic: string,
    fields: readonly string[],
  ): { text: string; newest: number } | undefined {
    const entry = fields[1];
    if (fields[0] !== ANCHORING_FIELD || entry === undefined) return undefined;
    let positions: PositionRanges;
    try {
      positions = (JSON.parse(entry) as { positions: PositionRanges }).positions;
    } catch {
      return undefined;
    }
    const newest = positions[positions.length - 1]?.[1] ?? 0;
    return { text: `{"type":"batch","topic":"${topic}",${entry.slice(1)}`, newest };
  }

  /**
   * Sends one anchoring stream entry to a subscription if it concerns it. False when its
   * channel is full: the subscription stays at the entry before and gets it later.
   */
  function sendNotice(
    subscription: Subscription,
    id: string,
    notice: { text: string; newest: number } | undefined,
  ): boolean {
    if (notice && notice.newest > subscription.anchoringAfter) {
      if (!subscription.subscriber.canTake()) return false;
      if (subscription.subscriber.deliver(notice.text)) stats.batchNotices += 1;
    }
    subscription.noticesThrough = id;
    return true;
  }

  /**
   * Sends anchoring changes to the topic's live subscriptions whose records they may hold.
   * One whose channel is full drops out of step: it gets the change once it drained.
   */
  function dispatchAnchoring(state: TopicState, entries: readonly [string, string[]][]): void {
    for (const [id, fields] of entries) {
      state.anchoringRead = id;
      const notice = noticeOf(state.topic, fields);
      for (const subscription of state.subscriptions) {
        if (subscription.mode !== 'live') continue;
        if (!sendNotice(subscription, id, notice)) startCatchUp(subscription);
      }
    }
  }

  /**
   * Sends the anchoring changes a subscription is behind on, from the topic's anchoring
   * stream, up to what the reader dispatched. True once it is up to date; false when its
   * channel filled up meanwhile. Changes the stream was trimmed of are not sent (read the
   * record's batch over HTTP, §3.9–3.10).
   */
  async function replayAnchoring(subscription: Subscription, state: TopicState): Promise<boolean> {
    while (
      subscription.active &&
      compareEntryIds(subscription.noticesThrough, state.anchoringRead) < 0
    ) {
      const through = state.anchoringRead;
      const entries = (await redis.xrange(
        state.anchoringKey,
        `(${subscription.noticesThrough}`,
        through,
        'COUNT',
        readCount,
      )) as [string, string[]][];
      for (const [id, fields] of entries)
        if (!sendNotice(subscription, id, noticeOf(state.topic, fields))) return false;
      if (entries.length < readCount) subscription.noticesThrough = through;
    }
    return true;
  }

  /** Whether the subscription has every record and anchoring change the reader dispatched. */
  function inStep(subscription: Subscription, state: TopicState): boolean {
    return (
      subscription.cursor >= state.dispatched &&
      compareEntryIds(subscription.noticesThrough, state.anchoringRead) >= 0
    );
  }

  function startCatchUp(subscription: Subscription): void {
    if (subscription.mode === 'catchup' || !subscription.active) return;
    subscription.mode = 'catchup';
    stats.catchUps += 1;
    void catchUp(subscription).catch((error: unknown) => {
      logger.warn(
        { err: error, sessionId: subscription.subscriber.id, topic: subscription.topic },
        'subscription catch-up failed; retrying',
      );
      // Still 'catchup' meanwhile, so that the reader does not send it records past a gap.
      setTimeout(() => {
        if (!subscription.active) return;
        subscription.mode = 'live';
        startCatchUp(subscription);
      }, READER_RETRY_MS).unref();
    });
  }

  /**
   * Reads what a subscription missed, from its cursor: from the stream, and from history for
   * what the stream was trimmed of; back in step once it reached what the reader dispatched.
   */
  async function catchUp(subscription: Subscription): Promise<void> {
    const { topic } = subscription;
    const key = keys.topicStream(topic);
    while (subscription.active && !closed) {
      if (!subscription.subscriber.canTake()) {
        await sleep(DRAIN_POLL_MS);
        continue;
      }
      const state = topics.get(topic);
      if (!state) return;
      const entries = (await redis.xrange(
        key,
        `(${entryIdOf(subscription.cursor)}`,
        '+',
        'COUNT',
        readCount,
      )) as [string, string[]][];
      if (!subscription.active) return;
      const first = entries.length > 0 ? positionOfEntryId(entries[0]![0]) : undefined;
      const missing =
        first === undefined
          ? Math.max(0, state.dispatched - subscription.cursor)
          : first - subscription.cursor - 1;
      if (missing > 0) {
        // The stream no longer holds positions (cursor, first): they come from Postgres.
        if (!(await fromHistory(subscription, Math.min(missing, readCount), first))) return;
        continue;
      }
      const items: Item[] = [];
      for (const [id, fields] of entries) {
        if (fields[0] === STREAM_FIELD && fields[1] !== undefined)
          items.push(itemOf(positionOfEntryId(id), fields[1]));
      }
      if (
        items.length > 0 &&
        !sendWhileRoom(
          subscription,
          messagesOf(topic, items, subscription.subscriber.recordsMessageLimit),
        )
      )
        continue;
      if (entries.length < readCount && subscription.cursor >= state.dispatched) {
        if (!(await replayAnchoring(subscription, state))) continue;
        if (!inStep(subscription, state)) continue;
        // In step: the reader delivers what comes after the cursor from now on.
        subscription.mode = 'live';
        return;
      }
    }
  }

  /**
   * Delivers up to `limit` records after the cursor from history, before `until` (the
   * stream's first position). Positions history does not have while it has later ones were
   * never stored (a record the writer refused): they are skipped. When it has nothing at
   * all, the records may not be stored yet: it looks again for historyWaitMs, then ends
   * the subscription (`history_unavailable`; at once without history). False once ended.
   */
  async function fromHistory(
    subscription: Subscription,
    limit: number,
    until: number | undefined,
  ): Promise<boolean> {
    const after = subscription.cursor;
    let records: readonly HistoryRecord[] = [];
    try {
      records = deps.history ? await deps.history(subscription.topic, after, limit) : [];
    } catch (error) {
      logger.warn(
        { err: error, topic: subscription.topic, after },
        'could not read subscription history',
      );
    }
    if (!subscription.active) return false;
    const items: Item[] = [];
    for (const record of records) {
      if (record.position <= after) continue;
      if (until !== undefined && record.position >= until) break;
      items.push(itemOf(record.position, streamEntry(record)));
    }
    if (items.length > 0) {
      subscription.historyEmptySince = undefined;
      stats.historyRecords += items.length;
      sendWhileRoom(
        subscription,
        messagesOf(subscription.topic, items, subscription.subscriber.recordsMessageLimit),
      );
      return true;
    }
    if (until !== undefined && records.some((record) => record.position >= until)) {
      subscription.cursor = until - 1;
      return true;
    }
    // Not stored yet (the writer is behind), or history is unreachable: wait a while.
    const now = Date.now();
    subscription.historyEmptySince ??= now;
    if (deps.history && now - subscription.historyEmptySince < historyWaitMs) {
      await sleep(HISTORY_POLL_MS);
      return subscription.active;
    }
    end(subscription, 'history_unavailable');
    return false;
  }

  function end(subscription: Subscription, reason: UnsubscribeReason): void {
    if (!subscription.active) return;
    remove(subscription);
    stats.ended += 1;
    logger.info(
      {
        sessionId: subscription.subscriber.id,
        topic: subscription.topic,
        after: subscription.cursor,
        reason,
      },
      'subscription ended by the relay',
    );
    subscription.subscriber.subscriptionEnded(subscription.topic, reason, subscription.cursor);
  }

  function remove(subscription: Subscription): void {
    subscription.active = false;
    const state = topics.get(subscription.topic);
    state?.subscriptions.delete(subscription);
    if (state && state.subscriptions.size === 0) topics.delete(subscription.topic);
    const mine = bySubscriber.get(subscription.subscriber);
    if (mine?.get(subscription.topic) === subscription) mine.delete(subscription.topic);
    if (mine?.size === 0) bySubscriber.delete(subscription.subscriber);
  }

  async function stateOf(topic: string): Promise<TopicState> {
    const known = topics.get(topic);
    if (known) return known;
    let pending = opening.get(topic);
    if (!pending) {
      pending = (async () => {
        // Watched first, then its head: every later position is in the stream.
        const [head = 0] = await watchTopics(redis, keys, [topic], watchTtlMs);
        const anchoringKey = keys.topicAnchoring(topic);
        const newest = (await redis.xrevrange(anchoringKey, '+', '-', 'COUNT', 1)) as [
          string,
          string[],
        ][];
        const state: TopicState = {
          topic,
          key: keys.topicStream(topic),
          dispatched: head,
          anchoringKey,
          anchoringRead: newest[0]?.[0] ?? '0-0',
          subscriptions: new Set(),
        };
        topics.set(topic, state);
        return state;
      })().finally(() => opening.delete(topic));
      opening.set(topic, pending);
    }
    return pending;
  }

  /** Makes a blocked XREAD return now, so that the next one reads the new set of topics. */
  function interruptReader(): void {
    wake?.();
    if (blocked && readerId !== undefined) {
      redis.client('UNBLOCK', readerId).catch(() => {});
    }
  }

  async function readLoop(): Promise<void> {
    while (!closed) {
      if (topics.size === 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
        continue;
      }
      const states = [...topics.values()];
      try {
        readerId ??= Number(await reader.client('ID'));
        blocked = true;
        const result = (await reader.xread(
          'COUNT',
          readCount,
          'BLOCK',
          blockMs,
          'STREAMS',
          ...states.map((state) => state.key),
          ...states.map((state) => state.anchoringKey),
          ...states.map((state) => entryIdOf(state.dispatched)),
          ...states.map((state) => state.anchoringRead),
        )) as [string, [string, string[]][]][] | null;
        blocked = false;
        for (const [key, entries] of result ?? []) {
          if (key.startsWith(anchoringPrefix)) {
            const state = topics.get(key.slice(anchoringPrefix.length));
            if (state) dispatchAnchoring(state, entries);
          } else {
            const state = topics.get(key.slice(keyPrefix.length));
            if (state) dispatch(state, entries);
          }
        }
      } catch (error) {
        blocked = false;
        if (closed) return;
        logger.warn({ err: error }, 'subscription reader failed; retrying');
        await sleep(READER_RETRY_MS);
      }
    }
  }

  return {
    async subscribe(subscriber, requests) {
      // Registered before the first await, so that the session's limit (topicsOf) and an
      // unsubscribe right behind this subscribe see them; placed once their topic is open.
      const placed = requests.map((request) => {
        const previous = bySubscriber.get(subscriber)?.get(request.topic);
        if (previous) remove(previous);
        const subscription: Subscription = {
          subscriber,
          topic: request.topic,
          cursor: 0,
          anchoringAfter: 0,
          noticesThrough: '0-0',
          mode: 'pending',
          active: true,
        };
        const mine = bySubscriber.get(subscriber) ?? new Map<string, Subscription>();
        mine.set(request.topic, subscription);
        bySubscriber.set(subscriber, mine);
        return { request, subscription };
      });
      const answers: SubscribedTopic[] = [];
      try {
        for (const { request, subscription } of placed) {
          const state = await stateOf(request.topic);
          const after = request.after ?? state.dispatched;
          answers.push({ topic: request.topic, after, head: state.dispatched });
          if (!subscription.active) {
            // Unsubscribed (or its session dropped) meanwhile: nothing to deliver, and the
            // topic is not read for it.
            if (state.subscriptions.size === 0 && topics.get(request.topic) === state)
              topics.delete(request.topic);
            continue;
          }
          subscription.cursor = after;
          subscription.anchoringAfter = Math.min(request.anchoringAfter ?? after, after);
          // Changes of batches it may hold from before it subscribed come from the stream.
          subscription.noticesThrough =
            subscription.anchoringAfter < state.dispatched ? '0-0' : state.anchoringRead;
          // The state may have been dropped meanwhile (its last subscriber left): register again.
          topics.set(request.topic, state);
          state.subscriptions.add(subscription);
        }
      } catch (error) {
        for (const { subscription } of placed) remove(subscription);
        throw error;
      }
      interruptReader();
      return answers;
    },
    activate(subscriber, topicList) {
      const mine = bySubscriber.get(subscriber);
      for (const topic of topicList) {
        const subscription = mine?.get(topic);
        if (subscription?.mode !== 'pending') continue;
        const state = topics.get(topic);
        if (state && inStep(subscription, state)) subscription.mode = 'live';
        else startCatchUp(subscription);
      }
    },
    unsubscribe(subscriber, topicList) {
      const mine = bySubscriber.get(subscriber);
      for (const topic of topicList) {
        const subscription = mine?.get(topic);
        if (subscription) remove(subscription);
      }
    },
    topicsOf(subscriber) {
      return [...(bySubscriber.get(subscriber)?.keys() ?? [])];
    },
    drop(subscriber) {
      for (const subscription of [...(bySubscriber.get(subscriber)?.values() ?? [])])
        remove(subscription);
    },
    start() {
      refresher = setInterval(() => {
        if (topics.size === 0) return;
        watchTopics(redis, keys, [...topics.keys()], watchTtlMs).catch((error: unknown) =>
          logger.warn({ err: error }, 'could not refresh watched topics; retrying'),
        );
      }, watchTtlMs / 6);
      refresher.unref();
      // A reconnected reader has another client id.
      reader.on('ready', () => {
        readerId = undefined;
      });
      loop ??= readLoop();
    },
    async close() {
      closed = true;
      clearInterval(refresher);
      for (const subscriber of [...bySubscriber.keys()]) this.drop(subscriber);
      interruptReader();
      await loop;
    },
    stats() {
      let subscriptions = 0;
      for (const state of topics.values()) subscriptions += state.subscriptions.size;
      return { topics: topics.size, subscriptions, ...stats };
    },
  };
}
