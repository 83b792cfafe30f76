/**
 * Subscribers for the fault suite (docs/protocol.md §5.9): node-datachannel clients in their
 * own processes (apps/rtc-relay's test client, test/support/client-process.ts), each with its
 * session opened on the relay the scenario chooses (through that relay's control queue, the
 * request the gateway sends it), so a scenario knows which relay holds which subscriber and
 * kills that one. A subscriber that lost its session opens a new one and subscribes again
 * with `after` = the last position it got, as §11 tells clients to.
 */
import { randomBytes } from 'node:crypto';
import {
  type BusDeps,
  createKeys,
  createQueue,
  createQueueEvents,
  createRedisConnection,
  createRelayRegistry,
  jobIds,
  requestReply,
} from '@streamanchor/bus';
import {
  canonicalPayload,
  contentHashOf,
  type DeliveredRecord,
  type RecordsMessage,
  type ServerMessage,
  type SubscribedMessage,
} from '@streamanchor/protocol';
import type { Stack } from '@streamanchor/stack';
import { ClientProcess } from '../../../apps/rtc-relay/test/support/client';
import type { AckedRecord } from './publisher-client';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Opens sessions on a chosen relay of a stack, as the gateway does on the one it picked. */
export interface RelayDoor {
  /**
   * Offer from `client` → createSession on `relayId`'s control queue → answer → channel
   * open → hello. Subject `subscriber`, may subscribe to `topic` (and publish nothing).
   */
  open(client: ClientProcess, relayId: string, topic: string): Promise<{ sessionId: string }>;
  /** Sessions each relay holds, as its last heartbeat told the registry (what the gateway reads). */
  loads(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

export function openRelayDoor(stack: Stack): RelayDoor {
  const connection = createRedisConnection(stack.redis.url, 'faults-door');
  // Scenarios kill Redis: the door waits for it as the services do.
  connection.on('error', () => {});
  const bus: BusDeps = { connection, keys: createKeys(stack.redis.prefix) };
  const registry = createRelayRegistry({ redis: connection, keys: bus.keys });
  const doors = new Map<
    string,
    {
      queue: ReturnType<typeof createQueue<'relayControl'>>;
      events: ReturnType<typeof createQueueEvents>;
    }
  >();
  const doorOf = async (relayId: string) => {
    let door = doors.get(relayId);
    if (!door) {
      door = {
        queue: createQueue(bus, 'relayControl', relayId),
        events: createQueueEvents(bus, 'relayControl', relayId),
      };
      door.queue.on('error', () => {});
      door.events.on('error', () => {});
      doors.set(relayId, door);
    }
    await door.events.waitUntilReady();
    return door;
  };
  return {
    async open(client, relayId, topic) {
      const { queue, events } = await doorOf(relayId);
      const offerSdp = await client.offer({ protocol: 'streamanchor.v2' });
      const sessionId = randomBytes(16).toString('base64url');
      const timeoutMs = 10_000;
      const { answerSdp } = await requestReply(
        queue,
        events,
        'createSession',
        {
          sessionId,
          offerSdp,
          subject: 'subscriber',
          topics: [],
          subscribeTopics: [topic],
          tokenExpiresAt: Date.now() + 3600_000,
          deadline: Date.now() + timeoutMs,
        },
        { jobId: jobIds.createSession(sessionId), timeoutMs },
      );
      client.command({ cmd: 'answer', sdp: answerSdp });
      await client.waitFor((e) => e.event === 'open', 15_000);
      await client.message((m) => m.type === 'hello' && m.sessionId === sessionId);
      return { sessionId };
    },
    async loads() {
      const live = await registry.live(10_000);
      return new Map(live.map((relay) => [relay.relayId, relay.sessions]));
    },
    async close() {
      for (const { queue, events } of doors.values()) {
        await events.close().catch(() => {});
        await queue.close().catch(() => {});
      }
      connection.disconnect();
    },
  };
}

/** One subscriber to a topic, across the sessions it opens. */
export class Subscriber {
  /** The relay holding its current session. */
  relayId: string | undefined;
  /** Sessions opened (1 + reconnections). */
  sessions = 0;
  /** The `subscribed` answer of each session, in order. */
  readonly subscribed: SubscribedMessage[] = [];
  /** Its events (history()) when its current session opened. */
  private sessionStart = 0;

  private constructor(
    readonly name: string,
    readonly topic: string,
    private client: ClientProcess,
    private readonly door: RelayDoor,
  ) {}

  static async start(
    name: string,
    door: RelayDoor,
    relayId: string,
    topic = 'demo',
  ): Promise<Subscriber> {
    const subscriber = new Subscriber(name, topic, await ClientProcess.spawn(), door);
    await subscriber.connect(relayId);
    return subscriber;
  }

  /** Every record of its topic it got, in arrival order, across its sessions. */
  records(): DeliveredRecord[] {
    return this.client
      .messages()
      .filter((m): m is RecordsMessage => m.type === 'records' && m.topic === this.topic)
      .flatMap((m) => m.records);
  }

  /** The last position it got (0 before any): where it resumes. */
  last(): number {
    const records = this.records();
    return records.length === 0 ? 0 : records[records.length - 1]!.position;
  }

  /**
   * Whether its current session ended, and how: the relay ended its subscription
   * (`unsubscribed`, id null), or the channel closed, or the connection failed.
   */
  ended(): string | undefined {
    for (const event of this.client.history().slice(this.sessionStart)) {
      const message = event.data as ServerMessage | undefined;
      if (event.event === 'message' && message?.type === 'unsubscribed' && message.id === null)
        return `unsubscribed: ${JSON.stringify(message)}`;
      if (event.event === 'closed') return 'channel closed';
      if (event.event === 'state' && (event.state === 'failed' || event.state === 'closed'))
        return `connection ${String(event.state)}`;
    }
    return undefined;
  }

  /**
   * Opens a new session on `relayId` (closing the current one, if any) and subscribes with
   * `after` = the last position it got (0 the first time: from the topic's first record).
   */
  async connect(relayId: string, timeoutMs = 60_000): Promise<SubscribedMessage> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        // The previous session's peer (or a failed attempt's) goes first.
        if (this.sessions > 0 || attempt > 1) this.client.command({ cmd: 'close' });
        await this.door.open(this.client, relayId, this.topic);
        // From the new channel's open on (what the old one said before is behind it).
        this.sessionStart = this.client.history().length;
        this.sessions += 1;
        this.relayId = relayId;
        const id = `s${this.sessions}`;
        this.client.send(
          JSON.stringify({
            type: 'subscribe',
            id,
            topics: [{ topic: this.topic, after: this.last() }],
          }),
        );
        const answer = await this.client.message(
          (m: ServerMessage) => (m.type === 'subscribed' || m.type === 'nack') && m.id === id,
        );
        if (answer.type !== 'subscribed')
          throw new Error(`subscribe refused: ${JSON.stringify(answer)}`);
        this.subscribed.push(answer);
        return answer;
      } catch (error) {
        // The relay is still starting, or Redis is still coming back: try again.
        if (Date.now() > deadline) {
          throw new Error(
            `${this.name}: no subscription on ${relayId} within ${timeoutMs} ms (${attempt} attempts): ${(error as Error).message}`,
          );
        }
        await sleep(500);
      }
    }
  }

  /** Waits until it got every record of `recordIds` (or `timeoutMs` passed). */
  async until(recordIds: Iterable<string>, timeoutMs: number): Promise<void> {
    const wanted = new Set([...recordIds].map((id) => id.toLowerCase()));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const got = new Set(this.records().map((r) => r.recordId.toLowerCase()));
      if ([...wanted].every((id) => got.has(id))) return;
      await sleep(100);
    }
  }

  stop(): Promise<void> {
    return this.client.stop();
  }
}

/**
 * What §5.9 and §11 promise a subscriber that subscribed with `after` 0 and resumed each
 * session with `after` = the last position it got: positions 1, 2, 3… each exactly once, in
 * order, without gaps, across all its sessions (no duplicate either: it never resumed from
 * before its last position); every acked record among them once, each publisher's in its ack
 * order, with the fields its ack gave (recordId, contentHash, acceptedAt), the publisher's
 * subject, and a payload whose canonical form hashes to contentHash. A delivered record no
 * publisher got an ack for is allowed only up to `unacked` (publishes left without an answer,
 * or nacked `unavailable`: "no ack, no knowledge", §11). Returns the violations, [] when none.
 */
export function checkDelivery(options: {
  records: readonly DeliveredRecord[];
  /** Each publisher's acks, in ack order. */
  acked: readonly ReadonlyMap<string, AckedRecord>[];
  subject: string;
  unacked?: number;
}): string[] {
  const violations: string[] = [];
  const { records } = options;
  for (let i = 0; i < records.length; i++) {
    const expected = i + 1;
    if (records[i]!.position !== expected) {
      const previous = i > 0 ? records[i - 1]!.position : 0;
      violations.push(
        `position ${records[i]!.position} came after ${previous} (expected ${expected}: ${
          records[i]!.position <= previous ? 'a duplicate or out of order' : 'a gap'
        })`,
      );
      break;
    }
  }
  const delivered = new Map<string, DeliveredRecord>();
  for (const record of records) {
    const id = record.recordId.toLowerCase();
    if (delivered.has(id)) violations.push(`record ${id} delivered twice`);
    delivered.set(id, record);
  }
  let ackedCount = 0;
  for (const acks of options.acked) {
    let previous = { id: '-', position: 0 };
    for (const ack of acks.values()) {
      ackedCount += 1;
      const record = delivered.get(ack.recordId);
      if (!record) {
        violations.push(`acked record ${ack.recordId} (${ack.id}) never delivered`);
        continue;
      }
      if (record.position <= previous.position) {
        violations.push(
          `${ack.id} at position ${record.position}, before ${previous.id} (position ${previous.position}), acked to the same publisher before it`,
        );
      }
      previous = { id: ack.id, position: record.position };
      const fields = {
        subject: record.subject,
        contentHash: record.contentHash,
        acceptedAt: record.acceptedAt,
      };
      const want = {
        subject: options.subject,
        contentHash: ack.contentHash,
        acceptedAt: ack.acceptedAt,
      };
      if (JSON.stringify(fields) !== JSON.stringify(want))
        violations.push(
          `${ack.id}: delivered ${JSON.stringify(fields)}, acked ${JSON.stringify(want)}`,
        );
      if (record.pruned || contentHashOf(canonicalPayload(record.payload)) !== ack.contentHash)
        violations.push(`${ack.id}: its payload does not hash to the acked contentHash`);
    }
  }
  const extra = delivered.size - ackedCount;
  if (extra > (options.unacked ?? 0))
    violations.push(
      `${extra} records delivered that no publisher got an ack for (at most ${options.unacked ?? 0} allowed)`,
    );
  return violations;
}

/** Polls `check` every 100 ms until it holds; throws `what` after `timeoutMs`. */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await sleep(100);
  }
}
