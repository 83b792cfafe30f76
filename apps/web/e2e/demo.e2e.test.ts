/**
 * The product end to end: a real Chromium opens the demo page served by the gateway,
 * connects over WHIP-style signaling, publishes records over the WebRTC data channel to the
 * relay; the writer stores and anchors them on anvil, the indexer sends receipts back, and
 * the page verifies every proof against the chain. Nothing is mocked.
 *
 * Two topologies: Postgres with every service in its own process and two relays (as in
 * production), where subscribers on one relay get what publishers send to the other; and
 * PGlite with the writer and indexer sharing one process (the default `pnpm dev`).
 */
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchReceipt, verifyDeliveredRecord } from '@streamanchor/client';
import { NACK_CODES, verifyReceiptProof } from '@streamanchor/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoRecord, ReceivedRecord } from '../src/demo';
import {
  type AnchoredBatch,
  anchoredBatches,
  type DemoHarness,
  type DemoPage,
  E2E_FINALITY_DEPTH,
  openDemo,
} from './harness';

type DatabaseHandle = Awaited<ReturnType<DemoHarness['stack']['openDatabase']>>;

/**
 * Every record went acked → included → final (anvil does not reorg here): revisions grow,
 * the current receipt is final and FINALITY_DEPTH deep, and its block checked canonical.
 */
function expectFinalRecords(records: DemoRecord[]): void {
  for (const record of records) {
    const steps = record.history.map((step) => step.status);
    expect(steps.at(-1), `record #${record.seq}: ${steps.join(' → ')}`).toBe('final');
    // Straight to final is fine too (the indexer may first see the block already deep).
    expect(['included,final', 'final']).toContain(steps.join(','));
    const revisions = record.history.map((step) => step.revision);
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
    expect(new Set(revisions).size).toBe(revisions.length);
    expect(record.anchoring).toBe('final');
    expect(record.receipt?.status).toBe('final');
    expect(record.receipt?.confirmations).toBeGreaterThanOrEqual(E2E_FINALITY_DEPTH);
    expect(record.confirmations).toBeGreaterThanOrEqual(E2E_FINALITY_DEPTH);
    expect(record.state).toBe('verified');
    expect(record.verification?.onChain.canonical).toBe(true);
  }
}

/** Every published record was acked once, got one receipt, and the page verified it. */
function expectVerifiedRecords(records: DemoRecord[], expected: number): void {
  expect(records).toHaveLength(expected);
  const failures = records.filter((record) => record.state !== 'verified');
  expect(
    failures.map((r) => ({ seq: r.seq, state: r.state, nack: r.nack, error: r.error })),
  ).toEqual([]);
  const recordIds = new Set(records.map((record) => record.recordId));
  expect(recordIds.size).toBe(expected);
  for (const record of records) {
    expect(record.nack).toBeNull();
    expect(record.receipt?.recordId).toBe(record.recordId);
    expect(record.receipt?.contentHash).toBe(record.contentHash);
    expect(record.receipt?.acceptedAt).toBe(record.acceptedAt);
    expect(record.verification?.valid).toBe(true);
  }
}

/**
 * Re-checks from the test: each receipt's proof leads to its root (in Node, not only in the
 * browser), and that root is the one the contract emitted for the batch in BatchAnchored.
 */
function expectReceiptsMatchChain(
  records: DemoRecord[],
  chain: Map<string, AnchoredBatch[]>,
): Set<string> {
  const batchIds = new Set<string>();
  for (const record of records) {
    const receipt = record.receipt;
    if (!receipt) throw new Error(`record #${record.seq} has no receipt`);
    expect(verifyReceiptProof(receipt), `proof of record #${record.seq}`).toBe(true);
    const events = chain.get(receipt.batchId) ?? [];
    expect(events, `BatchAnchored events for batch ${receipt.batchId}`).toHaveLength(1);
    expect(events[0]?.merkleRoot).toBe(receipt.merkleRoot);
    expect(events[0]?.recordCount).toBe(receipt.recordCount);
    expect(events[0]?.txHash).toBe(receipt.txHash);
    expect(events[0]?.blockNumber).toBe(receipt.blockNumber);
    batchIds.add(receipt.batchId);
  }
  return batchIds;
}

/** Stored exactly once, each in an anchored batch whose root is the chain's. */
async function expectStoredAndAnchored(
  handle: DatabaseHandle,
  records: DemoRecord[],
  chain: Map<string, AnchoredBatch[]>,
): Promise<void> {
  const rows = await handle.db
    .selectFrom('record_leaves')
    .select(['record_id', 'batch_id', 'leaf_index', 'content_hash', 'topic', 'subject'])
    .execute();
  // Only this stack wrote to this database: every row is one of the page's records, once.
  expect(rows).toHaveLength(records.length);
  const byId = new Map(rows.map((row) => [row.record_id, row]));
  expect(byId.size).toBe(records.length);
  for (const record of records) {
    const row = byId.get(record.recordId as string);
    expect(row, `row of record #${record.seq}`).toBeDefined();
    expect(row?.content_hash).toBe(record.contentHash);
    expect(row?.batch_id).toBe(record.receipt?.batchId);
    expect(row?.leaf_index).toBe(record.receipt?.leafIndex);
    expect(row?.topic).toBe('demo');
    expect(row?.subject).toBe('demo');
  }

  const batches = await handle.db.selectFrom('batches').selectAll().execute();
  const batchIds = new Set(rows.map((row) => row.batch_id));
  expect(new Set(batches.map((batch) => batch.batch_id))).toEqual(batchIds);
  for (const batch of batches) {
    // In a canonical block (`included`), or already FINALITY_DEPTH deep (`final`).
    expect(['included', 'final'], `batch ${batch.batch_id}`).toContain(batch.status);
    const events = chain.get(batch.batch_id) ?? [];
    expect(events).toHaveLength(1);
    expect(events[0]?.merkleRoot).toBe(batch.merkle_root);
    expect(events[0]?.recordCount).toBe(batch.record_count);
    expect(rows.filter((row) => row.batch_id === batch.batch_id)).toHaveLength(batch.record_count);
  }
  const anchorEvents = await handle.db.selectFrom('anchor_events').selectAll().execute();
  expect(anchorEvents.map((event) => event.batch_id).sort()).toEqual([...batchIds].sort());
  // Every batch on chain is one of ours: nothing anchored twice, nothing anchored empty.
  expect(new Set(chain.keys())).toEqual(batchIds);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The recordIds of `page`'s own published records, in its publish order. */
async function publishedIds(page: DemoPage): Promise<string[]> {
  return (await page.records()).map((record) => record.recordId as string);
}

/** Received records, in order, without gaps after `after`, each a record of its content hash. */
function expectContiguous(received: ReceivedRecord[], after: number, count: number): void {
  expect(received.map((record) => record.position)).toEqual(range(after + 1, after + count));
  expect(new Set(received.map((record) => record.recordId)).size).toBe(count);
  for (const record of received) {
    expect(record.topic).toBe('demo');
    expect(record.subject).toBe('demo');
    expect(verifyDeliveredRecord(record), `content hash of position ${record.position}`).toBe(true);
  }
}

describe('demo end to end on Postgres (every service in its own process, two relays)', () => {
  let demo: DemoHarness;
  let handle: DatabaseHandle;
  const starting = new AbortController();

  beforeAll(async () => {
    demo = await openDemo({ database: 'postgres', signal: starting.signal, relays: 2 });
    handle = await demo.stack.openDatabase();
  });

  afterAll(async () => {
    starting.abort();
    await handle?.close();
    await demo?.close();
  });

  it('default: 500 records are acked once, stored once, anchored, and verified in the browser and on chain', async () => {
    const tally = await demo.publish(500);
    expect(tally).toEqual({ acked: 500, nacked: 0, failed: 0 });

    const counts = await demo.waitForVerdicts(500);
    expect(counts).toEqual({
      sent: 500,
      acked: 500,
      nacked: 0,
      receipts: 500,
      verified: 500,
      failed: 0,
    });

    const records = await demo.records();
    expectVerifiedRecords(records, 500);
    const chain = await anchoredBatches(demo.stack);
    expectReceiptsMatchChain(records, chain);
    await expectStoredAndAnchored(handle, records, chain);
    expect(demo.pageErrors).toEqual([]);
  });

  it('error: invalid messages get nacks with their codes, and the same session keeps publishing', async () => {
    const before = await demo.counts();
    expect(await demo.sendInvalid('topic-not-allowed')).toBe('topic_not_allowed');
    expect(await demo.sendInvalid('payload-too-large')).toBe('payload_too_large');
    expect(await demo.sendInvalid('malformed-json')).toBe('malformed_message');
    const nacks = await demo.nacks();
    expect(nacks.map((nack) => nack.code)).toEqual([
      'topic_not_allowed',
      'payload_too_large',
      'malformed_message',
    ]);
    for (const nack of nacks) expect(Object.keys(NACK_CODES)).toContain(nack.code);

    const tally = await demo.publish(20);
    expect(tally).toEqual({ acked: 20, nacked: 0, failed: 0 });
    const total = before.sent + 20;
    const counts = await demo.waitForVerdicts(total);
    expect(counts).toEqual({
      sent: total,
      acked: total,
      nacked: 3,
      receipts: total,
      verified: total,
      failed: 0,
    });

    const records = await demo.records();
    expectVerifiedRecords(records, total);
    const chain = await anchoredBatches(demo.stack);
    expectReceiptsMatchChain(records, chain);
    // The refused messages left no trace: the database holds exactly the acked records.
    await expectStoredAndAnchored(handle, records, chain);
    expect(demo.pageErrors).toEqual([]);
  });

  // Last in this block: these pages publish records of their own. Publishers are on one
  // relay, subscribers on the other: every record crosses relays through Redis.
  describe('subscriptions across two relays', () => {
    let pages: DemoPage[] = [];
    let publisherRelay: string;
    let subscriberRelay: string;

    it('default: records published on one relay reach every subscriber on the other once each, in one order, and are anchored', async () => {
      expect(demo.stack.relayIds).toHaveLength(2);
      [publisherRelay, subscriberRelay] = demo.stack.relayIds as [string, string];
      pages = [await demo.openPage(), await demo.openPage()];
      // Each page publishes through one relay and receives through the other.
      const attempts = [];
      for (const page of pages) {
        attempts.push(await page.connectOn('publisher', publisherRelay));
        attempts.push(await page.connectOn('subscriber', subscriberRelay));
      }
      console.log(`[e2e] sessions placed on their relays in ${attempts.join(', ')} attempts`);
      const starts = [];
      for (const page of pages) {
        const result = await page.subscribe('demo');
        if (!result.subscribed) throw new Error(`subscribe refused: ${result.code}`);
        starts.push(result.startedAfter);
      }
      // Live from the topic's head (the main page's 520 records): the same one for both.
      expect(starts[0]).toBeGreaterThanOrEqual(520);
      expect(starts[1]).toBe(starts[0]);
      const after = starts[0]!;

      const tallies = await Promise.all(pages.map((page) => page.publish(100)));
      expect(tallies).toEqual([
        { acked: 100, nacked: 0, failed: 0 },
        { acked: 100, nacked: 0, failed: 0 },
      ]);
      const [mine, theirs] = await Promise.all(pages.map(publishedIds));
      const received = await Promise.all(pages.map((page) => page.waitForReceived(200)));
      for (const list of received) expectContiguous(list, after, 200);
      const order = received[0]!.map((record) => record.recordId);
      // One order for every subscriber, holding each page's records in its publish order.
      expect(received[1]!.map((record) => record.recordId)).toEqual(order);
      expect(new Set(order)).toEqual(new Set([...mine!, ...theirs!]));
      expect(order.filter((id) => mine!.includes(id))).toEqual(mine);
      expect(order.filter((id) => theirs!.includes(id))).toEqual(theirs);
      const first = received[0]!.find((record) => record.recordId === mine![0]);
      expect(first?.payload).toMatchObject({ seq: 1, of: 100, text: 'demo record 1' });

      // Anchored: each publisher's receipts verified and final.
      await Promise.all(pages.map((page) => page.waitForVerdicts(100)));
      await Promise.all(pages.map((page) => page.waitForFinal(100)));
      for (const page of pages) {
        expectVerifiedRecords(await page.records(), 100);
        const latencies = await page.latencies();
        expect(latencies).toHaveLength(100);
        for (const latency of latencies) {
          expect(latency, `latency of #${latency.seq}`).toMatchObject({
            ack: expect.any(Number),
            delivered: expect.any(Number),
            anchored: expect.any(Number),
            final: expect.any(Number),
          });
          expect(latency.anchored!).toBeGreaterThanOrEqual(latency.ack!);
          expect(latency.final!).toBeGreaterThanOrEqual(latency.anchored!);
        }
        expect(page.pageErrors).toEqual([]);
      }
      // Nothing came twice, or late.
      for (const page of pages) expect(await page.received()).toHaveLength(200);
    });

    it('behavior: a subscriber page closed and reopened with its last position misses nothing and gets nothing twice', async () => {
      const [publisher, leaving] = pages as [DemoPage, DemoPage];
      const before = await leaving.received();
      const last = before.at(-1)!.position;
      await leaving.page.close();

      // Published while it is away.
      expect(await publisher.publish(30)).toMatchObject({ acked: 30 });
      const back = await demo.openPage();
      pages[1] = back;
      await back.connectOn('subscriber', subscriberRelay);
      const result = await back.subscribe('demo', last);
      expect(result).toMatchObject({ subscribed: true, startedAfter: last });
      if (result.subscribed) expect(result.head).toBeGreaterThanOrEqual(last + 30);
      // And once it is back.
      expect(await publisher.publish(20)).toMatchObject({ acked: 20 });

      const resumed = await back.waitForReceived(50);
      expectContiguous(resumed, last, 50);
      const stayed = (await publisher.waitForReceived(before.length + 50)).filter(
        (record) => record.position > last,
      );
      expect(resumed.map((record) => record.recordId)).toEqual(
        stayed.map((record) => record.recordId),
      );
      expect(resumed.map((record) => record.recordId)).toEqual(
        (await publishedIds(publisher)).slice(-50),
      );
      expect(back.pageErrors).toEqual([]);
    });

    it('error: a topic the token does not grant for subscribing is refused with topic_not_allowed; the subscription goes on', async () => {
      const [publisher, subscriber] = pages as [DemoPage, DemoPage];
      expect(await subscriber.subscribe('not-granted')).toMatchObject({
        subscribed: false,
        topic: 'not-granted',
        code: 'topic_not_allowed',
      });
      const had = (await subscriber.received()).length;
      await publisher.publish(5);
      const received = await subscriber.waitForReceived(had + 5);
      expect(received.slice(had).map((record) => record.recordId)).toEqual(
        (await publishedIds(publisher)).slice(-5),
      );
    });

    it('behavior: a subscriber page that stops reading falls behind alone: the publisher keeps being acked, the other subscriber gets every record, and the stalled one catches up once it reads again (ack latency printed with and without it)', async () => {
      // pages[0] publishes on one relay and reads on the other (the healthy subscriber);
      // pages[1] only reads, on the same relay, and is the one that stops reading.
      const [publisher, stalled] = pages as [DemoPage, DemoPage];
      const subscribers = [publisher, stalled];
      // Both caught up with everything published so far: the same last position.
      const lastPublished = (await publishedIds(publisher)).at(-1);
      const before = await Promise.all(
        subscribers.map(async (page) => {
          await page.page.waitForFunction(
            (id) => window.streamAnchorDemo.received().at(-1)?.recordId === id,
            lastPublished,
            { timeout: 30_000, polling: 100 },
          );
          return page.received();
        }),
      );
      const after = before[0]!.at(-1)!.position;
      expect(before[1]!.at(-1)!.position).toBe(after);

      // One run: RUN records of ~2 KB, in chunks within the relay's publish rate (500/s per
      // session, bursts of 1000), each chunk published at once. Returns the run's acks (ms).
      const RUN = 1500;
      const CHUNK = 500;
      const PADDING = 2048;
      const run = async (): Promise<number[]> => {
        const first = (await publisher.counts()).sent + 1;
        for (let sent = 0; sent < RUN; sent += CHUNK) {
          const started = Date.now();
          expect(await publisher.publish(CHUNK, 'demo', { paddingBytes: PADDING })).toEqual({
            acked: CHUNK,
            nacked: 0,
            failed: 0,
          });
          await sleep(Math.max(0, 1050 - (Date.now() - started)));
        }
        const latencies = (await publisher.latencies()).filter((l) => l.seq >= first);
        expect(latencies).toHaveLength(RUN);
        return latencies.map((l) => l.ack as number);
      };

      // Stop reading without burning a core (a busy loop would take one of the machine's
      // two from everyone): a synchronous XHR to a local server that answers after STALL_MS
      // blocks the stalled page's main thread, so its data channel's messages are not read.
      // The evaluate returns at once; the XHR starts next.
      const STALL_MS = 8000;
      const slow = createServer((_request, response) => {
        setTimeout(() => {
          response.writeHead(200, { 'access-control-allow-origin': '*' });
          response.end('ok');
        }, STALL_MS);
      });
      await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
      const slowUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`;
      type Stall = { stallStartedAt: number; stallEndedAt: number };
      // Alternated: without, with, without again once the stalled page caught up (the later
      // run rules out a drift over the test).
      const baseline = await run();
      let withStalled: number[];
      let publishedWhileStalled: number;
      let stall: Stall;
      try {
        await stalled.page.evaluate((url) => {
          setTimeout(() => {
            const times = window as unknown as Stall;
            times.stallStartedAt = Date.now();
            const request = new XMLHttpRequest();
            request.open('GET', url, false);
            request.send();
            times.stallEndedAt = Date.now();
          }, 0);
        }, slowUrl);
        const stallStarted = Date.now();
        await sleep(200);
        withStalled = await run();
        publishedWhileStalled = Date.now() - stallStarted;
        // Answers once the page's main thread is free again.
        stall = await stalled.page.evaluate(() => {
          const { stallStartedAt, stallEndedAt } = window as unknown as Stall;
          return { stallStartedAt, stallEndedAt };
        });
      } finally {
        slow.closeAllConnections();
        slow.close();
      }
      expect(stall.stallEndedAt - stall.stallStartedAt).toBeGreaterThanOrEqual(STALL_MS - 50);
      const resumedAt = Date.now();
      await stalled.waitForReceived(before[1]!.length + 2 * RUN);
      const caughtUpIn = Date.now() - resumedAt;
      baseline.push(...(await run()));

      const ids = (await publishedIds(publisher)).slice(-3 * RUN);
      for (const [i, page] of subscribers.entries()) {
        const received = (await page.waitForReceived(before[i]!.length + 3 * RUN)).slice(
          before[i]!.length,
        );
        expectContiguous(received, after, 3 * RUN);
        expect(received.map((record) => record.recordId)).toEqual(ids);
      }
      // It did stop reading: the records of the run published during its stall reached its
      // page only once the stall was over.
      const stalledRun = (await stalled.received()).slice(
        before[1]!.length + RUN,
        before[1]!.length + 2 * RUN,
      );
      const readDuringStall = stalledRun.filter((record) => record.receivedAt < stall.stallEndedAt);
      expect(readDuringStall).toHaveLength(0);
      // Nothing twice, nothing late; the stalled subscriber was never disconnected.
      await sleep(500);
      for (const [i, page] of subscribers.entries())
        expect(await page.received()).toHaveLength(before[i]!.length + 3 * RUN);
      const state = await stalled.page.evaluate(() => window.streamAnchorDemo.subscriber);
      expect(state).toMatchObject({ state: 'open', error: null });
      expect(state.subscription).toMatchObject({ topic: 'demo', ended: null });
      expect(await publisher.nacks()).toEqual([]);
      expect(stalled.pageErrors).toEqual([]);
      expect(publisher.pageErrors).toEqual([]);

      const quantile = (values: number[], q: number) => {
        const sorted = [...values].sort((a, b) => a - b);
        return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
      };
      const [w50, w99, b50, b99] = [
        quantile(withStalled, 0.5),
        quantile(withStalled, 0.99),
        quantile(baseline, 0.5),
        quantile(baseline, 0.99),
      ];
      const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : 'n/a');
      console.log(
        `[e2e] publisher ack p50/p99: with a stalled subscriber ${w50}/${w99} ms, without ${b50}/${b99} ms (ratio ${ratio(w50, b50)}/${ratio(w99, b99)}); runs of ${RUN} records of ~${PADDING} B, in chunks of ${CHUNK}, the run without twice (before and after); stalled ${STALL_MS} ms, its run took ${publishedWhileStalled} ms; caught up ${caughtUpIn} ms after it read again; without, before/after: ${quantile(baseline.slice(0, RUN), 0.5)}/${quantile(baseline.slice(0, RUN), 0.99)} and ${quantile(baseline.slice(RUN), 0.5)}/${quantile(baseline.slice(RUN), 0.99)} ms`,
      );
    });
  });
});

/** An HS256 JWT, as any token issuer sharing the gateway's secret would mint it. */
function hs256(secret: string, claims: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

describe('demo end to end on PGlite (writer and indexer share one process)', () => {
  let demo: DemoHarness;
  const starting = new AbortController();

  beforeAll(async () => {
    demo = await openDemo({ database: 'pglite', signal: starting.signal });
  });

  afterAll(async () => {
    starting.abort();
    await demo?.close();
  });

  it('default: records are verified in the browser, match the chain, and are in PGlite after a clean stop', async () => {
    expect(demo.stack.database.kind).toBe('pglite');
    expect(await demo.publish(50)).toEqual({ acked: 50, nacked: 0, failed: 0 });
    const counts = await demo.waitForVerdicts(50);
    expect(counts).toEqual({
      sent: 50,
      acked: 50,
      nacked: 0,
      receipts: 50,
      verified: 50,
      failed: 0,
    });
    expect(await demo.waitForFinal(50)).toEqual({ included: 0, final: 50, reorged: 0 });
    // Re-checking the final receipts changed no verdict.
    expect(await demo.counts()).toEqual(counts);
    const records = await demo.records();
    expectVerifiedRecords(records, 50);
    expectFinalRecords(records);
    const chain = await anchoredBatches(demo.stack);
    expectReceiptsMatchChain(records, chain);

    // The same receipts over HTTP (for clients whose session is gone), from the indexer
    // through the gateway.
    for (const record of records.slice(0, 5)) {
      const receipt = await fetchReceipt({
        baseUrl: demo.stack.urls.api,
        token: demo.stack.token,
        recordId: record.recordId as `0x${string}`,
      });
      expect(receipt).toMatchObject({
        status: 'final',
        recordId: record.recordId,
        blockHash: record.receipt?.blockHash,
        revision: record.receipt?.revision,
      });
    }
    const stranger = hs256(demo.stack.jwtSecret, {
      sub: 'someone-else',
      topics: ['demo'],
      iat: Math.floor(Date.now() / 1000),
      exp: Math.floor(Date.now() / 1000) + 600,
    });
    await expect(
      fetchReceipt({
        baseUrl: demo.stack.urls.api,
        token: stranger,
        recordId: records[0]!.recordId as `0x${string}`,
      }),
    ).rejects.toMatchObject({ code: 'record_not_found' });

    // PGlite belongs to the chain-services process: open it once the stack has stopped cleanly.
    await demo.stack.stop();
    const handle = await demo.stack.openDatabase();
    try {
      await expectStoredAndAnchored(handle, records, chain);
    } finally {
      await handle.close();
    }
    expect(demo.pageErrors).toEqual([]);
  });
});
