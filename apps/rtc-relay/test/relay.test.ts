/**
 * The relay end to end: the app runs in this process, the WebRTC client in a child
 * process (test/support/client-process.ts), the gateway's part is played through the
 * real control queue (requestReply), and a Worker on the real `records` queue stands in
 * for chain-writer. Redis is real; nothing is mocked.
 *
 * node-datachannel's process-wide cleanup() is not called here: it made the vitest
 * worker exit abnormally; the worker process ends anyway (main.ts calls it on shutdown).
 */
import {
  createQueue,
  createQueueEvents,
  createRelayRegistry,
  createWorker,
  jobIds,
  RemoteError,
  requestReply,
  subjectSuspendedKey,
} from '@streamanchor/bus';
import {
  type AckMessage,
  CLOCK_TOLERANCE_SECONDS,
  canonicalPayload,
  contentHashOf,
  type NackMessage,
  type Receipt,
  type ReceiptNoticeJob,
  type ReceiptRecord,
  receiptOf,
  type ServerMessage,
  splitReceipt,
} from '@streamanchor/protocol';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { ClientProcess } from './support/client';
import { freeTcpPort, newSessionId, startTestRelay, type TestRelay } from './support/relay';

let relay: TestRelay | undefined;
let client: ClientProcess | undefined;
let second: ClientProcess | undefined;

afterEach(async () => {
  await Promise.all([client?.stop(), second?.stop()]);
  client = undefined;
  second = undefined;
  await relay?.close();
  relay = undefined;
});

const isAck = (id: string) => (m: ServerMessage) => m.type === 'ack' && m.id === id;
const answerTo = (id: string) => (m: ServerMessage) =>
  (m.type === 'ack' || m.type === 'nack') && m.id === id;
const publish = (id: string, payload: unknown, topic = 'demo') =>
  JSON.stringify({ type: 'publish', id, topic, payload });

async function setup(
  env: Record<string, string> = {},
): Promise<{ relay: TestRelay; client: ClientProcess }> {
  const [r, c] = await Promise.all([startTestRelay(env), ClientProcess.spawn()]);
  relay = r;
  client = c;
  return { relay: r, client: c };
}

/**
 * A relay with its records writer, a session of `mallory` (the misbehaving one) and one of
 * `bob` (who must not notice).
 */
async function setupAttackerAndOther(
  env: Record<string, string>,
): Promise<{ relay: TestRelay; attacker: ClientProcess; other: ClientProcess }> {
  const { relay: r, client: attacker } = await setup(env);
  second = await ClientProcess.spawn();
  const other = second;
  await r.startWriter();
  await r.connect(attacker, { subject: 'mallory' });
  await r.connect(other, { subject: 'bob' });
  return { relay: r, attacker, other };
}

const sampleReceipt: Receipt = {
  status: 'included',
  confirmations: 1,
  revision: 1,
  recordId: `0x${'11'.repeat(32)}`,
  topic: 'demo',
  subject: 'alice',
  contentHash: `0x${'22'.repeat(32)}`,
  acceptedAt: 1_700_000_000_000,
  leafHash: `0x${'33'.repeat(32)}`,
  leafIndex: 0,
  proof: [`0x${'44'.repeat(32)}`],
  batchId: `0x${'55'.repeat(32)}`,
  merkleRoot: `0x${'66'.repeat(32)}`,
  recordCount: 2,
  chainId: 31337,
  contract: `0x${'77'.repeat(20)}`,
  txHash: `0x${'88'.repeat(32)}`,
  blockNumber: 12,
  blockHash: `0x${'99'.repeat(32)}`,
  logIndex: 0,
};

/** Adds receiptNotice jobs to the relay's receipts queue, as the indexer does, and awaits each. */
function receiptQueue(relay: TestRelay) {
  const queue = createQueue(relay.bus, 'receipts', relay.app.relayId);
  const events = createQueueEvents(relay.bus, 'receipts', relay.app.relayId);
  const ready = events.waitUntilReady();
  return {
    async notice(data: ReceiptNoticeJob) {
      await ready;
      return (await queue.add('receiptNotice', data)).waitUntilFinished(events, 10_000);
    },
    async close() {
      await events.close();
      await queue.close();
    },
  };
}

/**
 * A worker on the real `indexerLookup` queue standing in for chain-indexer's sessionRecords
 * answers: `records` by `batchId/sessionId` (none for others); `requests` lists what was asked.
 */
async function startIndexerStandIn(
  relay: TestRelay,
  records: Record<string, ReceiptRecord[]> = {},
) {
  const requests: string[] = [];
  const worker = createWorker(relay.bus, 'indexerLookup', undefined, async (job) => {
    const { batchId, sessionId } = job.data as { batchId: string; sessionId: string };
    requests.push(`${batchId}/${sessionId}`);
    return { records: records[`${batchId}/${sessionId}`] ?? [] };
  });
  await worker.waitUntilReady();
  return { requests, close: () => worker.close() };
}

describe('rtc-relay', () => {
  test('default: hello, then a publish is acked after its record was queued', async () => {
    const { relay, client } = await setup();
    await relay.startWriter();
    const { sessionId, answerSdp, hello } = await relay.connect(client, {
      topics: ['demo', 'other'],
    });

    // One muxed UDP port for every session; the SDP advertises MAX_MESSAGE_BYTES.
    const candidates = answerSdp.split(/\r?\n/).filter((line) => line.startsWith('a=candidate:'));
    expect(candidates).toEqual([
      expect.stringContaining(`127.0.0.1 ${relay.config.ice.udpPort} typ host`),
    ]);
    expect(answerSdp).toMatch(/^a=max-message-size:4096\r?$/m);

    expect(hello).toEqual({
      type: 'hello',
      protocol: 'streamanchor.v1',
      sessionId,
      subject: 'alice',
      topics: ['demo', 'other'],
      subscribe: [],
      maxSubscriptions: 64,
      maxPayloadBytes: 1024,
      maxMessageBytes: 4096,
      maxDepth: 32,
      maxMembers: 1024,
      maxTotalMembers: 4096,
    });

    const payload = { b: [1, 2.5, 'ü'], a: { z: null, y: true } };
    client.send(publish('p1', payload));
    const ack = (await client.message(isAck('p1'))) as AckMessage;
    const canonical = canonicalPayload(payload);
    expect(ack.contentHash).toBe(contentHashOf(canonical));
    expect(ack.recordId).toMatch(/^0x[0-9a-f]{64}$/);

    await expect.poll(() => relay.recordJobs.length).toBe(1);
    expect(relay.recordJobs[0]!.records).toEqual([
      {
        recordId: ack.recordId,
        topic: 'demo',
        subject: 'alice',
        contentHash: ack.contentHash,
        acceptedAt: ack.acceptedAt,
        payload: canonical,
        relayId: relay.app.relayId,
        sessionId,
      },
    ]);

    // The relay is in the registry, and it keeps the session's route alive.
    const registry = createRelayRegistry({ redis: relay.redis, keys: relay.bus.keys });
    await expect
      .poll(async () => (await registry.live(5_000)).map((r) => [r.relayId, r.sessions]))
      .toEqual([[relay.app.relayId, 1]]);
    expect(await registry.getSession(sessionId)).toEqual({
      relayId: relay.app.relayId,
      subject: 'alice',
    });
  });

  test('behavior: records from a burst are grouped into fewer jobs, acked in order', async () => {
    const { relay, client } = await setup();
    await relay.startWriter();
    await relay.connect(client);
    const summary = await client.publishMany({
      count: 200,
      payloadBytes: 200,
      topic: 'demo',
      idPrefix: 'b',
      listAcks: true,
    });
    expect(summary).toMatchObject({ acks: 200, nacks: 0 });
    expect(summary.acked!.map((a) => a.id)).toEqual(Array.from({ length: 200 }, (_, i) => `b${i}`));

    await expect
      .poll(() => relay.recordJobs.reduce((n, job) => n + job.records.length, 0))
      .toBe(200);
    expect(relay.recordJobs.length).toBeLessThan(200);
    const queued = relay.recordJobs.flatMap((job) => job.records.map((r) => r.recordId));
    expect(queued).toEqual(summary.acked!.map((a) => a.recordId));
    expect(relay.app.stats()).toMatchObject({
      acks: 200,
      jobsAdded: relay.recordJobs.length,
      recordsQueued: 200,
    });
  });

  test('behavior: a v2 session gets runs of acks as `acks` messages, in publish order, split at a nack', async () => {
    const { relay, client } = await setup();
    await relay.startWriter();
    await relay.connect(client, {}, { protocol: 'streamanchor.v2' });
    client.command({
      cmd: 'publish',
      count: 300,
      payloadBytes: 50,
      topic: 'demo',
      idPrefix: 'r',
      listAcks: true,
    });
    const done = await client.waitFor((e) => e.event === 'published');
    expect(done).toMatchObject({ acks: 300, nacks: 0 });
    expect((done as unknown as { acked: { id: string }[] }).acked.map((a) => a.id)).toEqual(
      Array.from({ length: 300 }, (_, i) => `r${i}`),
    );
    // A nack between acks: each reply still in arrival order.
    client.send(publish('a1', 1));
    client.send(publish('n1', 1, 'not-granted'));
    client.send(publish('a2', 1));
    await vi.waitFor(() =>
      expect(client.messages().filter((m) => m.type !== 'hello')).toHaveLength(3),
    );
    const replies = client.messages().filter((m) => m.type !== 'hello');
    const ids = replies.flatMap((m) =>
      m.type === 'acks' ? m.acks.map((a) => a.id) : m.type === 'nack' ? [m.id] : [],
    );
    expect(ids).toEqual(['a1', 'n1', 'a2']);
    expect(replies[1]).toMatchObject({ type: 'nack', code: 'topic_not_allowed' });
  });

  test('behavior: a v2 message of publish lines gets one answer per line, in order, each line checked alone', async () => {
    const { relay, client } = await setup();
    await relay.startWriter();
    await relay.connect(client, {}, { protocol: 'streamanchor.v2' });
    client.send(
      [
        publish('p1', { n: 1 }),
        publish('n1', 1, 'not-granted'),
        '{"type":"publish",',
        '', // empty lines are skipped
        `${publish('p2', { n: 2 })}\r`, // CR LF: the CR is JSON whitespace
        publish('too-big', 'z'.repeat(1100)),
        publish('p3', { n: 3 }),
        '', // a trailing LF too
      ].join('\n'),
    );
    const ids = ['p1', 'n1', null, 'p2', 'too-big', 'p3'];
    const answers: { id: string | null; type: string; code?: string }[] = [];
    while (answers.length < ids.length) {
      const m = await client.message((m) => m.type === 'acks' || m.type === 'nack');
      if (m.type === 'acks') for (const ack of m.acks) answers.push({ id: ack.id, type: 'ack' });
      else if (m.type === 'nack') answers.push({ id: m.id, type: 'nack', code: m.code });
    }
    expect(answers).toEqual([
      { id: 'p1', type: 'ack' },
      { id: 'n1', type: 'nack', code: 'topic_not_allowed' },
      { id: null, type: 'nack', code: 'malformed_message' },
      { id: 'p2', type: 'ack' },
      { id: 'too-big', type: 'nack', code: 'payload_too_large' },
      { id: 'p3', type: 'ack' },
    ]);
    const queued = () => relay.recordJobs.flatMap((job) => job.records);
    await vi.waitFor(() => expect(queued()).toHaveLength(3));
    expect(queued().map((r) => r.payload)).toEqual(['{"n":1}', '{"n":2}', '{"n":3}']);

    // A message with no publish in it is refused as a whole.
    client.send('\n\n');
    expect(await client.message((m) => m.type === 'nack')).toMatchObject({
      id: null,
      code: 'malformed_message',
      message: expect.stringContaining('(the message holds no publish)'),
    });
  });

  test('behavior: under v1 a line feed is JSON whitespace, so two publishes on two lines are one malformed message', async () => {
    const { relay, client } = await setup();
    await relay.connect(client, {}, { protocol: 'streamanchor.v1' });
    client.send(`${publish('a', 1)}\n${publish('b', 2)}`);
    client.send('{"type":"publish",\n"id":"c","topic":"demo","payload":3}');
    expect(await client.message((m) => m.type === 'nack')).toMatchObject({
      code: 'malformed_message',
    });
    expect(await client.message((m) => m.type === 'ack')).toMatchObject({ id: 'c' });
    expect(relay.app.stats().nacks).toEqual({ malformed_message: 1 });
  });

  test('behavior: publish lines within the per-line limits but over maxMessageBytes together are one message_too_large', async () => {
    const { relay, client } = await setup();
    const offerSdp = await client.offer({ protocol: 'streamanchor.v2' });
    const { answerSdp } = await relay.createSession({ offerSdp });
    // Plays a non-compliant client: it pretends the relay allowed 64 KiB messages.
    client.command({ cmd: 'answer', sdp: answerSdp, maxMessageSize: 65536 });
    await client.waitFor((e) => e.event === 'open');
    await client.message((m) => m.type === 'hello');
    const line = publish('l', 'y'.repeat(900));
    client.send(Array.from({ length: 6 }, () => line).join('\n')); // ~5.6 KB > 4096
    client.send(publish('fine', 'small'));
    expect(await client.message((m) => m.type === 'acks' || m.type === 'nack')).toMatchObject({
      type: 'nack',
      id: null,
      code: 'message_too_large',
    });
    const next = await client.message((m) => m.type === 'acks' || m.type === 'nack');
    expect(next).toMatchObject({ type: 'acks', acks: [{ id: 'fine' }] });
  });

  test('behavior: refused publish lines count one refusal each; past REFUSALS_CLOSE_AFTER the rest of the message is not read', async () => {
    const { relay, attacker, other } = await setupAttackerAndOther({
      REFUSALS_CLOSE_AFTER: '50',
    });
    // setupAttackerAndOther opens v1 sessions: this attacker gets a v2 one of its own.
    await attacker.stop();
    const v2 = await ClientProcess.spawn();
    client = v2;
    await relay.connect(v2, { subject: 'mallory' }, { protocol: 'streamanchor.v2' });
    v2.send(Array.from({ length: 80 }, () => 'not json').join('\n'));
    await v2.message((m) => m.type === 'nack' && m.id === null && m.code === 'rate_limited');
    await v2.waitFor((e) => e.event === 'closed', 10_000);
    const nacks = relay.app.stats().nacks;
    expect(nacks.malformed_message).toBe(51);
    expect(nacks.rate_limited).toBe(1);
    expect(
      await other.publishMany({ count: 50, payloadBytes: 100, topic: 'demo', idPrefix: 'n' }),
    ).toMatchObject({ acks: 50, nacks: 0 });
  });

  test('behavior: each invalid message gets its nack code and the session keeps working', async () => {
    const { relay, client } = await setup({ OPS_PORT: String(await freeTcpPort()) });
    await relay.connect(client, { topics: ['demo'] });
    const cases: [string, string, string | null][] = [
      ['{"type":"publish",', 'malformed_message', null],
      ['[1,2,3]', 'malformed_message', null],
      ['"just a string"', 'malformed_message', null],
      [JSON.stringify({ type: 'subscribe', id: 'u1', topic: 'demo' }), 'invalid_message', 'u1'],
      [JSON.stringify({ type: 'publish', id: 'm1', topic: 'demo' }), 'invalid_message', 'm1'],
      [
        JSON.stringify({ type: 'publish', id: 'x1', topic: 'demo', payload: 1, extra: true }),
        'invalid_message',
        'x1',
      ],
      [
        JSON.stringify({ type: 'publish', id: 'bad-topic', topic: 'Not A Topic', payload: 1 }),
        'invalid_message',
        'bad-topic',
      ],
      [publish('big-payload', 'z'.repeat(1100)), 'payload_too_large', 'big-payload'],
      [
        '{"type":"publish","id":"surrogate","topic":"demo","payload":"\\ud800"}',
        'invalid_payload',
        'surrogate',
      ],
      [publish('forbidden', 1, 'secret'), 'topic_not_allowed', 'forbidden'],
    ];
    for (const [text] of cases) client.send(text);
    client.send(publish('valid-after', { ok: true }));

    const answers: ServerMessage[] = [];
    for (let i = 0; i < cases.length + 1; i++) {
      answers.push(await client.message((m) => m.type === 'ack' || m.type === 'nack'));
    }
    // One answer per message, in arrival order.
    expect(
      answers.slice(0, -1).map((m) => [(m as NackMessage).code, (m as NackMessage).id]),
    ).toEqual(cases.map(([, code, id]) => [code, id]));
    for (const nack of answers.slice(0, -1))
      expect((nack as NackMessage).message.length).toBeGreaterThan(0);
    expect(answers.at(-1)).toMatchObject({ type: 'ack', id: 'valid-after' });
    expect(relay.app.stats().nacks).toEqual({
      malformed_message: 3,
      invalid_message: 4,
      payload_too_large: 1,
      invalid_payload: 1,
      topic_not_allowed: 1,
    });
    // The same counts on the ops server's /metrics, with the open session and the queues.
    const ops = `http://127.0.0.1:${relay.config.ops.port}`;
    const metrics = await (await fetch(`${ops}/metrics`)).text();
    expect(metrics).toContain('streamanchor_relay_sessions 1');
    expect(metrics).toContain('streamanchor_relay_records_acked_total 1');
    expect(metrics).toContain(
      'streamanchor_relay_records_nacked_total{code="malformed_message"} 3',
    );
    expect(metrics).toContain(
      'streamanchor_relay_records_nacked_total{code="topic_not_allowed"} 1',
    );
    expect(metrics).toMatch(/streamanchor_queue_jobs\{queue="records",state="waiting"\} 1/);
    expect(metrics).toContain('streamanchor_queue_jobs{queue="receipts",state="failed"} 0');
    const ready = await fetch(`${ops}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { status: 'ready' }]);
  });

  test('behavior: a message over the advertised size from a client that ignores it is nacked message_too_large', async () => {
    const { relay, client } = await setup();
    const offerSdp = await client.offer();
    const { answerSdp } = await relay.createSession({ offerSdp });
    // Plays a non-compliant client: it pretends the relay allowed 64 KiB messages.
    client.command({ cmd: 'answer', sdp: answerSdp, maxMessageSize: 65536 });
    await client.waitFor((e) => e.event === 'open');
    await client.message((m) => m.type === 'hello');
    client.send(publish('huge', 'h'.repeat(20_000)));
    client.send(publish('fine', 'small'));
    expect(await client.message((m) => m.type === 'ack' || m.type === 'nack')).toMatchObject({
      type: 'nack',
      id: null,
      code: 'message_too_large',
    });
    expect(await client.message(answerTo('fine'))).toMatchObject({ type: 'ack' });
  });

  test('behavior: receipts reach the session over the data channel', async () => {
    const { relay, client } = await setup();
    const { sessionId } = await relay.connect(client);
    const receipt = sampleReceipt;
    const receipts = createQueue(relay.bus, 'receipts', relay.app.relayId);
    const events = createQueueEvents(relay.bus, 'receipts', relay.app.relayId);
    try {
      await events.waitUntilReady();
      const job = await receipts.add('receiptBatch', {
        receipts: [
          { sessionId, receipt },
          { sessionId: newSessionId(), receipt },
        ],
      });
      expect(await job.waitUntilFinished(events, 10_000)).toEqual({ delivered: 1 });
      expect(await client.message((m) => m.type === 'receipt')).toEqual({
        type: 'receipt',
        receipt,
      });
      expect(relay.app.stats()).toMatchObject({ receiptsDelivered: 1, receiptsUndeliverable: 1 });
    } finally {
      await events.close();
      await receipts.close();
    }
  });

  test('behavior: a v2 session gets a batch in `receipts` messages, later notices of it as one `anchoring`', async () => {
    const { relay, client } = await setup();
    const { sessionId, hello } = await relay.connect(client, {}, { protocol: 'streamanchor.v2' });
    expect(hello.protocol).toBe('streamanchor.v2');
    const { anchor, record } = splitReceipt(sampleReceipt);
    const records = [0, 1, 2].map((i) => ({
      ...record,
      recordId: `0x${(i + 1).toString(16).padStart(64, '0')}` as const,
      leafIndex: i,
    }));
    const final = { ...anchor, status: 'final' as const, revision: 2, confirmations: 12 };
    const receipts = createQueue(relay.bus, 'receipts', relay.app.relayId);
    const events = createQueueEvents(relay.bus, 'receipts', relay.app.relayId);
    try {
      await events.waitUntilReady();
      const notice = async (data: ReceiptNoticeJob) =>
        (await receipts.add('receiptNotice', data)).waitUntilFinished(events, 10_000);
      // Revision 1 in two chunks (as the indexer splits a large notice), for a session that
      // is here and one that is not; then revision 2.
      expect(
        await notice({
          anchor,
          sessions: [
            { sessionId, records: records.slice(0, 2) },
            { sessionId: newSessionId(), records },
          ],
        }),
      ).toEqual({ delivered: 2 });
      expect(
        await notice({ anchor, sessions: [{ sessionId, records: records.slice(2) }] }),
      ).toEqual({ delivered: 1 });
      expect(await notice({ anchor: final, sessions: [{ sessionId, records }] })).toEqual({
        delivered: 3,
      });
      // A chunk of revision 1 retried after revision 2 went out: its record gets revision 2.
      const late = { ...record, recordId: `0x${'09'.repeat(32)}` as const, leafIndex: 3 };
      expect(await notice({ anchor, sessions: [{ sessionId, records: [late] }] })).toEqual({
        delivered: 1,
      });
      await vi.waitFor(() => expect(client.messages()).toHaveLength(5), { timeout: 5000 });
      expect(client.messages().slice(1)).toEqual([
        { type: 'receipts', anchor, records: records.slice(0, 2) },
        { type: 'receipts', anchor, records: records.slice(2) },
        { type: 'anchoring', anchor: final, records: 3 },
        { type: 'receipts', anchor: final, records: [late] },
      ]);
      expect(relay.app.stats()).toMatchObject({ receiptsDelivered: 7, receiptsUndeliverable: 3 });
    } finally {
      await events.close();
      await receipts.close();
    }
  });

  test('behavior: a v1 session gets one `receipt` per record of a receiptNotice job', async () => {
    const { relay, client } = await setup();
    const { sessionId, hello } = await relay.connect(client);
    expect(hello.protocol).toBe('streamanchor.v1');
    const { anchor, record } = splitReceipt(sampleReceipt);
    const other = { ...record, recordId: `0x${'77'.repeat(32)}` as const, leafIndex: 1 };
    const final = { ...anchor, status: 'final' as const, revision: 2 };
    const receipts = createQueue(relay.bus, 'receipts', relay.app.relayId);
    const events = createQueueEvents(relay.bus, 'receipts', relay.app.relayId);
    try {
      await events.waitUntilReady();
      for (const notice of [anchor, final]) {
        const job = await receipts.add('receiptNotice', {
          anchor: notice,
          sessions: [{ sessionId, records: [record, other] }],
        });
        expect(await job.waitUntilFinished(events, 10_000)).toEqual({ delivered: 2 });
      }
      await vi.waitFor(() => expect(client.messages()).toHaveLength(5), { timeout: 5000 });
      expect(client.messages().slice(1)).toEqual(
        [anchor, final].flatMap((notice) =>
          [record, other].map((r) => ({ type: 'receipt', receipt: receiptOf(notice, r) })),
        ),
      );
    } finally {
      await events.close();
      await receipts.close();
    }
  });

  test('behavior: a later notice with only the number of records is one `anchoring` to a v2 session that has them, and asks the indexer for nothing', async () => {
    const { relay, client } = await setup();
    const { sessionId } = await relay.connect(client, {}, { protocol: 'streamanchor.v2' });
    const indexer = await startIndexerStandIn(relay);
    const { anchor, record } = splitReceipt(sampleReceipt);
    const final = { ...anchor, status: 'final' as const, revision: 2, confirmations: 12 };
    const receipts = receiptQueue(relay);
    try {
      expect(
        await receipts.notice({ anchor, sessions: [{ sessionId, records: [record] }] }),
      ).toEqual({ delivered: 1 });
      expect(
        await receipts.notice({ anchor: final, sessions: [{ sessionId, recordCount: 1 }] }),
      ).toEqual({ delivered: 1 });
      // Retried after it: the newest anchoring again, never the older one.
      expect(
        await receipts.notice({
          anchor: { ...anchor, status: 'reorged', revision: 1 },
          sessions: [{ sessionId, recordCount: 1 }],
        }),
      ).toEqual({ delivered: 1 });
      await vi.waitFor(() => expect(client.messages()).toHaveLength(4), { timeout: 5000 });
      expect(client.messages().slice(1)).toEqual([
        { type: 'receipts', anchor, records: [record] },
        { type: 'anchoring', anchor: final, records: 1 },
        { type: 'anchoring', anchor: final, records: 1 },
      ]);
      expect(indexer.requests).toEqual([]);
    } finally {
      await receipts.close();
      await indexer.close();
    }
  });

  test('behavior: for a v1 session, or a v2 one not sent the batch, the relay asks the indexer for the records of a notice that gave their number', async () => {
    const { relay, client } = await setup();
    second = await ClientProcess.spawn();
    const { sessionId: v1 } = await relay.connect(client, {}, { protocol: 'streamanchor.v1' });
    const { sessionId: v2 } = await relay.connect(second, {}, { protocol: 'streamanchor.v2' });
    const { anchor, record } = splitReceipt(sampleReceipt);
    const other = { ...record, recordId: `0x${'77'.repeat(32)}` as const, leafIndex: 1 };
    const indexer = await startIndexerStandIn(relay, {
      [`${anchor.batchId}/${v1}`]: [record, other],
      [`${anchor.batchId}/${v2}`]: [other],
    });
    const final = { ...anchor, status: 'final' as const, revision: 2, confirmations: 12 };
    const receipts = receiptQueue(relay);
    try {
      expect(
        await receipts.notice({
          anchor: final,
          sessions: [
            { sessionId: v1, recordCount: 2 },
            { sessionId: v2, recordCount: 1 },
          ],
        }),
      ).toEqual({ delivered: 3 });
      await vi.waitFor(() => expect(client.messages()).toHaveLength(3), { timeout: 5000 });
      expect(client.messages().slice(1)).toEqual(
        [record, other].map((r) => ({ type: 'receipt', receipt: receiptOf(final, r) })),
      );
      await vi.waitFor(() => expect(second!.messages()).toHaveLength(2), { timeout: 5000 });
      expect(second.messages()[1]).toEqual({ type: 'receipts', anchor: final, records: [other] });
      expect(indexer.requests.sort()).toEqual(
        [`${anchor.batchId}/${v1}`, `${anchor.batchId}/${v2}`].sort(),
      );
    } finally {
      await receipts.close();
      await indexer.close();
    }
  });

  test('error: when the indexer does not answer within LOOKUP_TIMEOUT_MS, those receipts count undeliverable and later notices still go out', async () => {
    const { relay, client } = await setup({ LOOKUP_TIMEOUT_MS: '300' });
    const { sessionId } = await relay.connect(client, {}, { protocol: 'streamanchor.v1' });
    const { anchor, record } = splitReceipt(sampleReceipt);
    const final = { ...anchor, status: 'final' as const, revision: 2, confirmations: 12 };
    const receipts = receiptQueue(relay);
    try {
      // No indexer on the lookup queue: the request times out.
      expect(
        await receipts.notice({ anchor: final, sessions: [{ sessionId, recordCount: 1 }] }),
      ).toEqual({ delivered: 0 });
      const next = { ...anchor, batchId: `0x${'aa'.repeat(32)}` as const };
      expect(
        await receipts.notice({ anchor: next, sessions: [{ sessionId, records: [record] }] }),
      ).toEqual({ delivered: 1 });
      await vi.waitFor(() => expect(client.messages()).toHaveLength(2), { timeout: 5000 });
      expect(client.messages()[1]).toEqual({ type: 'receipt', receipt: receiptOf(next, record) });
      expect(relay.app.stats()).toMatchObject({ receiptsDelivered: 1, receiptsUndeliverable: 1 });
    } finally {
      await receipts.close();
    }
  });

  test('behavior: a burst of receipts many times MAX_BUFFERED_BYTES is paced to a client that reads, not cut off', async () => {
    // 64 KiB (the minimum); 600 receipts of ~3 KB (40-hash proofs) are ~28× that, and the
    // 32 the relay writes per event-loop turn already pass it.
    const { relay, client } = await setup({ MAX_BUFFERED_BYTES: String(64 * 1024) });
    const { sessionId } = await relay.connect(client);
    const receipts = createQueue(relay.bus, 'receipts', relay.app.relayId);
    const events = createQueueEvents(relay.bus, 'receipts', relay.app.relayId);
    try {
      await events.waitUntilReady();
      const burst = Array.from({ length: 600 }, (_, i) => ({
        sessionId,
        receipt: {
          ...sampleReceipt,
          recordId: `0x${i.toString(16).padStart(64, '0')}` as const,
          proof: Array.from({ length: 40 }, () => `0x${'44'.repeat(32)}` as const),
        },
      }));
      const job = await receipts.add('receiptBatch', { receipts: burst });
      expect(await job.waitUntilFinished(events, 30_000)).toEqual({ delivered: 600 });
      await vi.waitFor(
        () => expect(client!.messages().filter((m) => m.type === 'receipt')).toHaveLength(600),
        { timeout: 10_000, interval: 50 },
      );
      const got = client
        .messages()
        .filter((m): m is Extract<ServerMessage, { type: 'receipt' }> => m.type === 'receipt')
        .map((m) => m.receipt.recordId);
      expect(got).toEqual(burst.map((b) => b.receipt.recordId));
      expect(relay.app.stats()).toMatchObject({ receiptsDelivered: 600, closedSlowReaders: 0 });
    } finally {
      await events.close();
      await receipts.close();
    }
  });

  test('behavior: a client that stops reading its receipts is closed after the stall; another session in the same job gets all of its own', async () => {
    const { relay, client: frozen } = await setup({ MAX_BUFFERED_BYTES: String(64 * 1024) });
    second = await ClientProcess.spawn();
    const reader = second;
    const { sessionId: frozenId } = await relay.connect(frozen, { subject: 'mallory' });
    const { sessionId: readerId } = await relay.connect(reader, { subject: 'bob' });
    const receipts = createQueue(relay.bus, 'receipts', relay.app.relayId);
    const events = createQueueEvents(relay.bus, 'receipts', relay.app.relayId);
    frozen.freeze(true);
    try {
      await events.waitUntilReady();
      const big = (i: number) => ({
        ...sampleReceipt,
        recordId: `0x${i.toString(16).padStart(64, '0')}` as const,
        proof: Array.from({ length: 40 }, () => `0x${'44'.repeat(32)}` as const),
      });
      const job = await receipts.add('receiptBatch', {
        // ~6 MB for the frozen client: past what its receive window takes while it is stopped.
        receipts: Array.from({ length: 2200 }, (_, i) => ({
          sessionId: i % 11 === 0 ? readerId : frozenId,
          receipt: big(i),
        })),
      });
      const { delivered } = await job.waitUntilFinished(events, 30_000);
      // All 200 of the reader's, and of the frozen client's only what fit before the stall.
      expect(delivered).toBeGreaterThanOrEqual(200);
      expect(delivered).toBeLessThan(2200);
      expect(relay.app.stats()).toMatchObject({ closedSlowReaders: 1 });
      await vi.waitFor(
        () => expect(reader.messages().filter((m) => m.type === 'receipt')).toHaveLength(200),
        { timeout: 10_000, interval: 50 },
      );
    } finally {
      frozen.freeze(false);
      await events.close();
      await receipts.close();
    }
  });

  test('behavior: deleteSession closes the session and its route', async () => {
    const { relay, client } = await setup();
    const { sessionId } = await relay.connect(client);
    const registry = createRelayRegistry({ redis: relay.redis, keys: relay.bus.keys });
    expect(await registry.getSession(sessionId)).toBeDefined();
    const remove = (nonce: string) =>
      requestReply(
        relay.control,
        relay.controlEvents,
        'deleteSession',
        { sessionId, deadline: Date.now() + 5_000 },
        { jobId: jobIds.deleteSession(sessionId, nonce), timeoutMs: 5_000 },
      );
    expect(await remove('a')).toEqual({ deleted: true });
    await client.waitFor((e) => e.event === 'closed');
    await expect.poll(() => relay.app.stats().sessions, { timeout: 10_000 }).toBe(0);
    await expect.poll(() => registry.getSession(sessionId)).toBeUndefined();
    expect(await remove('b')).toEqual({ deleted: false });
  });

  test('behavior: a closed session is audited with its nack counts', async () => {
    const { relay, client } = await setup();
    const { sessionId } = await relay.connect(client, { subject: 'carol' });
    client.send('{"type":"publish",');
    expect(await client.message((m) => m.type === 'nack')).toMatchObject({
      code: 'malformed_message',
    });
    client.command({ cmd: 'close' });
    await expect.poll(() => relay.app.stats().sessions, { timeout: 10_000 }).toBe(0);
    const audit = createQueue(relay.bus, 'audit');
    try {
      const events = async () =>
        (await audit.getJobs(['waiting', 'delayed', 'active', 'completed'])).flatMap(
          (job) => job.data.events,
        );
      await expect
        .poll(async () => (await events()).map((e) => e.kind).sort(), { timeout: 10_000 })
        .toEqual(['session_closed', 'session_nacks']);
      const [closed, nacks] = [...(await events())].sort((a, b) => a.kind.localeCompare(b.kind));
      expect(closed).toMatchObject({ subject: 'carol', sessionId, relayId: relay.app.relayId });
      expect(nacks).toMatchObject({ sessionId, details: { counts: { malformed_message: 1 } } });
    } finally {
      await audit.close();
    }
  });

  test('behavior: the session ends when the client closes its channel', async () => {
    const { relay, client } = await setup();
    const { sessionId } = await relay.connect(client);
    client.command({ cmd: 'close' });
    await expect.poll(() => relay.app.stats().sessions, { timeout: 10_000 }).toBe(0);
    const registry = createRelayRegistry({ redis: relay.redis, keys: relay.bus.keys });
    await expect.poll(() => registry.getSession(sessionId)).toBeUndefined();
  });

  test('behavior: at token expiry (exp + clock tolerance) a token_expired nack with id null comes, then the session closes', async () => {
    const { relay, client } = await setup();
    // exp lies in the past, within the tolerance: the session is accepted and lasts ~3 s.
    // (No publish before expiry: on a loaded machine the channel may open late, and what
    // is checked here is the relay's own word at expiry, not a race with it.)
    const tokenExpiresAt = Date.now() + 3000 - CLOCK_TOLERANCE_SECONDS * 1000;
    await relay.connect(client, { tokenExpiresAt });
    expect(await client.message((m) => m.type === 'nack')).toMatchObject({
      type: 'nack',
      id: null,
      code: 'token_expired',
    });
    await client.waitFor((e) => e.event === 'closed');
    // The peer connection closes after the channel's linger (CLOSE_GRACE_MS at most).
    await expect.poll(() => relay.app.stats().sessions, { timeout: 10_000 }).toBe(0);
    expect(relay.app.stats().nacks).toEqual({ token_expired: 1 });
  });

  test('behavior: a session flooding past its quota gets rate_limited; another session keeps every record acked', async () => {
    const {
      relay,
      attacker: flooder,
      other,
    } = await setupAttackerAndOther({
      PUBLISH_RATE_PER_SESSION: '100',
      PUBLISH_BURST_PER_SESSION: '300',
      // Only nacked here; closing a flooder is the next test.
      REFUSALS_CLOSE_AFTER: '0',
    });
    const flood = flooder.publishMany({
      count: 5000,
      payloadBytes: 100,
      topic: 'demo',
      idPrefix: 'f',
    });
    // Publish while the flood is being refused.
    await expect.poll(() => relay.app.stats().nacks.rate_limited ?? 0).toBeGreaterThan(0);
    const normal = await other.publishMany({
      count: 250,
      payloadBytes: 100,
      topic: 'demo',
      idPrefix: 'n',
      listAcks: true,
    });
    expect(normal).toMatchObject({ acks: 250, nacks: 0, codes: {} });
    const flooded = await flood;
    expect(flooded.acks + flooded.nacks).toBe(5000);
    expect(Object.keys(flooded.codes)).toEqual(['rate_limited']);
    expect(flooded.codes.rate_limited).toBeGreaterThan(0);
    expect(flooded.retryAfterMs).toBeGreaterThan(0);
    // Every acked record of the other session reached the records queue.
    await expect
      .poll(
        () =>
          relay.recordJobs.flatMap((job) => job.records).filter((r) => r.subject === 'bob').length,
      )
      .toBe(250);
  });

  test('behavior: a session that ignores retryAfterMs is closed; another session keeps every record acked', async () => {
    const {
      relay,
      attacker: flooder,
      other,
    } = await setupAttackerAndOther({
      // Per session, so the other one too: its 250 fit the burst.
      PUBLISH_RATE_PER_SESSION: '100',
      PUBLISH_BURST_PER_SESSION: '300',
      REFUSALS_CLOSE_AFTER: '200',
    });
    flooder.command({
      cmd: 'publish',
      count: 5000,
      payloadBytes: 100,
      topic: 'demo',
      idPrefix: 'f',
    });
    // (This client process counts a flood's answers itself, so the last id-null nack is not
    // seen one by one here; the relay's side is: the session is closed.)
    await flooder.waitFor((e) => e.event === 'closed', 30_000);
    const normal = await other.publishMany({
      count: 250,
      payloadBytes: 100,
      topic: 'demo',
      idPrefix: 'n',
      listAcks: true,
    });
    expect(normal).toMatchObject({ acks: 250, nacks: 0, codes: {} });
    await expect.poll(() => relay.app.stats().sessions, { timeout: 10_000 }).toBe(1);
    // The 200 refusals it was allowed in a second, the one that closed it, and its last word.
    expect(relay.app.stats().nacks.rate_limited).toBeGreaterThanOrEqual(202);
    // Its subject may not open sessions for ABUSIVE_SUBJECT_SUSPEND_MS (default 30 s), on
    // any gateway; the other subject is not suspended.
    const suspended = await relay.redis.pttl(subjectSuspendedKey(relay.bus.keys, 'mallory'));
    expect(suspended).toBeGreaterThan(20_000);
    expect(suspended).toBeLessThanOrEqual(30_000);
    expect(await relay.redis.exists(subjectSuspendedKey(relay.bus.keys, 'bob'))).toBe(0);
  });

  test('behavior: a session sending malformed messages is closed once past REFUSALS_CLOSE_AFTER, and its subject suspended', async () => {
    const { relay, attacker, other } = await setupAttackerAndOther({
      REFUSALS_CLOSE_AFTER: '50',
      ABUSIVE_SUBJECT_SUSPEND_MS: '5000',
    });
    const deep = `{"type":"publish","id":"d","topic":"demo","payload":${'['.repeat(100)}${']'.repeat(100)}}`;
    for (let i = 0; i < 80; i++) attacker.send(i % 2 ? deep : 'not json');
    const last = await attacker.message(
      (m) => m.type === 'nack' && m.id === null && m.code === 'rate_limited',
    );
    expect(last).toMatchObject({
      code: 'rate_limited',
      retryAfterMs: 5000,
      message: expect.stringMatching(
        /more than 50 messages refused within a second; the session is closed and this subject may not open a new one for 5 s/,
      ),
    });
    await attacker.waitFor((e) => e.event === 'closed', 10_000);
    const nacks = relay.app.stats().nacks;
    // 51 answered (the 51st closed it), then the last word; the rest was not read.
    expect((nacks.malformed_message ?? 0) + (nacks.payload_too_deep ?? 0)).toBe(51);
    expect(nacks.rate_limited).toBe(1);
    const suspended = await relay.redis.pttl(subjectSuspendedKey(relay.bus.keys, 'mallory'));
    expect(suspended).toBeGreaterThan(0);
    expect(suspended).toBeLessThanOrEqual(5000);
    const normal = await other.publishMany({
      count: 100,
      payloadBytes: 100,
      topic: 'demo',
      idPrefix: 'n',
    });
    expect(normal).toMatchObject({ acks: 100, nacks: 0 });
  });

  test('behavior: a 30,000-deep payload gets payload_too_deep, a 3,000-key one payload_too_complex; another session keeps being acked', async () => {
    const { attacker, other } = await setupAttackerAndOther({
      MAX_MESSAGE_BYTES: '65536',
      // The codes are what this test is about; closing on refused bytes is the next one.
      REFUSED_BYTES_CLOSE_AFTER: '0',
    });
    const deep = `${'['.repeat(30_000)}${']'.repeat(30_000)}`;
    const wide = `{${Array.from({ length: 3000 }, (_, i) => `"k${i}":${i}`).join(',')}}`;
    const raw = (id: string, payload: string) =>
      `{"type":"publish","id":"${id}","topic":"demo","payload":${payload}}`;
    const rounds = 20;
    for (let i = 0; i < rounds; i++) {
      attacker.send(raw(`deep${i}`, deep));
      attacker.send(raw(`wide${i}`, wide));
    }
    const normal = await other.publishMany({
      count: 200,
      payloadBytes: 100,
      topic: 'demo',
      idPrefix: 'n',
    });
    expect(normal).toMatchObject({ acks: 200, nacks: 0 });
    const answers: ServerMessage[] = [];
    for (let i = 0; i < 2 * rounds; i++) {
      answers.push(await attacker.message((m) => m.type === 'ack' || m.type === 'nack'));
    }
    expect(answers.map((m) => [(m as NackMessage).code, (m as NackMessage).id])).toEqual(
      Array.from({ length: rounds }, (_, i) => [
        ['payload_too_deep', `deep${i}`],
        ['payload_too_complex', `wide${i}`],
      ]).flat(),
    );
    // The attacker's session still works.
    attacker.send(publish('fine', { ok: true }));
    expect(await attacker.message(answerTo('fine'))).toMatchObject({ type: 'ack' });
  });

  test('behavior: a session sending large refused messages is closed once past REFUSED_BYTES_CLOSE_AFTER', async () => {
    const { relay, client: attacker } = await setup({
      MAX_MESSAGE_BYTES: '65536',
      REFUSED_BYTES_CLOSE_AFTER: '100000',
    });
    await relay.connect(attacker, { subject: 'mallory' });
    const deep = `{"type":"publish","id":"d","topic":"demo","payload":${'['.repeat(30_000)}${']'.repeat(30_000)}}`;
    for (let i = 0; i < 5; i++) attacker.send(deep);
    const last = await attacker.message(
      (m) => m.type === 'nack' && m.id === null && m.code === 'rate_limited',
    );
    expect(last).toMatchObject({
      message: expect.stringMatching(
        /more than 100000 bytes of messages refused within a second; the session is closed and this subject may not open a new one for 30 s/,
      ),
      retryAfterMs: 30_000,
    });
    await attacker.waitFor((e) => e.event === 'closed', 10_000);
    // Two 60 KB messages are past 100,000: the second closed it, the rest was not read.
    expect(relay.app.stats().nacks).toEqual({ payload_too_deep: 2, rate_limited: 1 });
  });

  test('behavior: duplicate member names and integers beyond 2^53 get their codes', async () => {
    const { relay, client } = await setup();
    await relay.connect(client);
    client.send('{"type":"publish","id":"dup","topic":"demo","payload":{"a":1,"a":2}}');
    client.send('{"type":"publish","id":"big","topic":"demo","payload":{"n":9007199254740993}}');
    client.send(publish('nul', { s: 'a\u0000b' }));
    expect(await client.message(answerTo('dup'))).toMatchObject({ code: 'duplicate_member' });
    expect(await client.message(answerTo('big'))).toMatchObject({ code: 'invalid_payload' });
    expect(await client.message(answerTo('nul'))).toMatchObject({
      type: 'ack',
      contentHash: contentHashOf('{"s":"a\\u0000b"}'),
    });
  });

  test('behavior: a data channel with a protocol the relay does not speak is refused', async () => {
    const { relay, client } = await setup();
    const offerSdp = await client.offer({ protocol: 'streamanchor.v9' });
    const { answerSdp } = await relay.createSession({ offerSdp });
    client.command({ cmd: 'answer', sdp: answerSdp });
    await client.waitFor((e) => e.event === 'closed');
    expect(client.messages()).toEqual([]);
  });

  test('behavior: a data channel with another label is refused', async () => {
    const { relay, client } = await setup();
    const offerSdp = await client.offer({ label: 'chat' });
    const { answerSdp } = await relay.createSession({ offerSdp });
    client.command({ cmd: 'answer', sdp: answerSdp });
    await client.waitFor((e) => e.event === 'closed');
    expect(client.messages()).toEqual([]);
  });

  test('behavior: stop() acks only queued records, closes sessions and leaves the registry', async () => {
    const { relay, client } = await setup();
    await relay.startWriter();
    await relay.connect(client);
    client.command({
      cmd: 'publish',
      count: 2000,
      payloadBytes: 200,
      topic: 'demo',
      idPrefix: 's',
      listAcks: true,
    });
    await expect.poll(() => relay.app.stats().acks).toBeGreaterThan(0);
    await relay.app.stop();
    await client.waitFor((e) => e.event === 'closed');
    const stats = relay.app.stats();
    expect(stats.sessions).toBe(0);
    // Every ack the relay sent is for a record that reached the records queue.
    await expect
      .poll(() => relay.recordJobs.reduce((n, job) => n + job.records.length, 0))
      .toBe(stats.recordsQueued);
    expect(stats.acks).toBe(stats.recordsQueued);
    const registry = createRelayRegistry({ redis: relay.redis, keys: relay.bus.keys });
    expect(await registry.live(5_000)).toEqual([]);
  });

  test('error: an offer that is not usable SDP is refused with invalid_sdp', async () => {
    const { relay, client } = await setup();
    const garbage = await relay.createSession({ offerSdp: 'hello' }).catch((e: unknown) => e);
    expect(garbage).toBeInstanceOf(RemoteError);
    expect(garbage).toMatchObject({ code: 'invalid_sdp' });

    // Looks like SDP with a data channel, but libdatachannel refuses it (no ICE credentials).
    const offer = await client.offer();
    const broken = offer.replace(/^a=ice-(ufrag|pwd):.*\r?\n/gm, '');
    const refused = await relay.createSession({ offerSdp: broken }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'invalid_sdp', detail: expect.stringMatching(/ICE/) });
    expect(relay.app.stats().sessions).toBe(0);
  });

  test('error: a createSession past its deadline is dropped', async () => {
    const { relay, client } = await setup();
    const offerSdp = await client.offer();
    const error = await relay
      .createSession({ offerSdp, deadline: Date.now() - 1 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'deadline_exceeded' });
    expect(relay.app.stats().sessions).toBe(0);
  });

  test('error: over MAX_SESSIONS a session is refused with at_capacity', async () => {
    const { relay, client } = await setup({ MAX_SESSIONS: '1' });
    const offerSdp = await client.offer();
    await relay.createSession({ offerSdp });
    const error = await relay.createSession({ offerSdp }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'at_capacity' });
  });

  test('error: when Redis refuses the records job, publishes are nacked unavailable', async () => {
    const { relay, client } = await setup();
    await relay.connect(client);
    // BullMQ's add script INCRs the queue's id counter: a non-integer there makes Redis
    // refuse every add on the records queue (and only there).
    const idKey = `${relay.bus.keys.bull}:records:id`;
    await relay.redis.set(idKey, 'not-a-number');
    client.send(publish('refused', 1));
    expect(await client.message(answerTo('refused'))).toMatchObject({
      type: 'nack',
      code: 'unavailable',
    });
    await relay.redis.del(idKey);
    client.send(publish('accepted', 2));
    expect(await client.message(answerTo('accepted'))).toMatchObject({ type: 'ack' });
    expect(relay.app.stats()).toMatchObject({ failedAdds: 1, recordsRefused: 1 });
  });
});
