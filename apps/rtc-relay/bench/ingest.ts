/**
 * Relay ingest benchmark (not a test). What a client gets acked per second by the real relay
 * (this process: createApp on a fresh Redis prefix, the real `records` queue; every record
 * validated, canonicalized, hashed, queued durably in a BullMQ job, then acked) against the
 * baseline: a bare node-datachannel sink in this same process, one PeerConnection per client,
 * that answers each message with an ack-sized message (the client's id copied, no validation,
 * no Redis). The client is the same for both, and the payloads the same (200 bytes); rounds
 * alternate (packages/testing bench.ts). Rows:
 *
 * - `relay-ingest-node`: records/s acked, first send → last ack, for a node-datachannel
 *   client in its own process (test/support/client-process.ts), sending as fast as its
 *   channel takes them (≤ 1 MiB buffered). Bar: ≥ 0.8 × the sink.
 * - `relay-ingest-chromium`: the same with headless Chromium as the client (one page, one
 *   RTCPeerConnection to the relay and one to the sink). Bar: ≥ 0.8 × the sink.
 * - `relay-ack-p99`: the node client paced at half the relay's median rate of the first row,
 *   to the relay and to the sink at that same rate; p99 of send → ack per run, in ms.
 *   Bar: ≤ 25 ms (absolute).
 *
 * The relay runs with its publish quotas off and a per-session buffer share large enough
 * for the client's window (the bench measures the record path, not the quotas). Exits
 * non-zero when broken: a record nacked, acks whose content hashes are wrong, or acks the
 * queue does not account for.
 *
 *   npx tsx apps/rtc-relay/bench/ingest.ts [--quick] [--rounds N] [--count N] [--only node,chromium,p99] [--paced-rate N] [--protocol streamanchor.v1]
 *   node --cpu-prof --import tsx apps/rtc-relay/bench/ingest.ts --only node --ours-only   (profile the relay)
 *
 * --rounds: alternated rounds per row (default 5, quick 2). --count: records per run of the
 * node row (default 40,000, quick 10,000; Chromium runs half as many). --ours-only: skip the
 * sink (for profiles; prints no rows); --baseline-only: skip the relay's runs of the node row
 * (to profile the sink); --paced-rate: pace the latency row at N records/s instead of half the
 * relay's rate (to compare changes at one rate on a noisy machine); --protocol: the clients'
 * data-channel protocol (default streamanchor.v2, whose relay bundles acks; the sink always
 * answers each message alone). The node row's note gives
 * the CPU time per record (all threads) of this process (relay or sink) and of the client
 * process. Needs Redis at TEST_REDIS_URL (default
 * redis://127.0.0.1:6379; cleans its prefix up) and Chromium (CHROMIUM_PATH, default
 * /usr/bin/chromium) for the Chromium row.
 */
import { createQueue } from '@streamanchor/bus';
import {
  canonicalPayload,
  contentHashOf,
  isProtocolVersion,
  PROTOCOL_VERSION,
} from '@streamanchor/protocol';
import {
  alternate,
  type BenchRow,
  benchOption,
  compareRow,
  isQuick,
  launchChromium,
  reportRow,
  summarize,
} from '@streamanchor/testing';
import nodeDataChannel, { PeerConnection, type RtcConfig } from 'node-datachannel';
import { rtcConfigFor } from '../src/sessions/manager';
import { withMaxMessageSize, withoutCandidates, withoutTrickleOption } from '../src/sessions/sdp';
import { ClientProcess } from '../test/support/client';
import { freeUdpPort, startTestRelay } from '../test/support/relay';

const option = (name: string) => benchOption(name);

const quick = isQuick();
const rounds = Number(option('--rounds') ?? (quick ? 2 : 5));
const count = Number(option('--count') ?? (quick ? 10_000 : 40_000));
const chromiumCount = Math.round(count / 2);
const only = new Set((option('--only') ?? 'node,chromium,p99').split(','));
const oursOnly = process.argv.includes('--ours-only');
const baselineOnly = process.argv.includes('--baseline-only');
const pacedRate = Number(option('--paced-rate') ?? 0);
/** The clients' data-channel protocol (v2, the SDK's, by default; v1 acks each record alone). */
const protocol = option('--protocol') ?? PROTOCOL_VERSION;
if (!isProtocolVersion(protocol))
  throw new Error(`--protocol: not a protocol version: ${protocol}`);
const PAYLOAD_BYTES = 200;
/** How long each paced run of the latency row lasts. */
const PACED_SECONDS = quick ? 1.5 : 4;
const ZERO32 = `0x${'0'.repeat(64)}`;

class BrokenBench extends Error {}

// ---------------------------------------------------------------------------
// The baseline: a bare sink.
// ---------------------------------------------------------------------------

interface Sink {
  /** Answers an offer the way the relay does (complete, no candidates of the offer used). */
  answer(offerSdp: string): Promise<string>;
  close(): void;
}

function createSink(rtcConfig: RtcConfig, maxMessageBytes: number): Sink {
  const peers: PeerConnection[] = [];
  return {
    async answer(offerSdp) {
      const pc = new PeerConnection(`sink-${peers.length}`, rtcConfig);
      peers.push(pc);
      const gathered = new Promise<void>((resolve) =>
        pc.onGatheringStateChange((state) => state === 'complete' && resolve()),
      );
      pc.onDataChannel((channel) => {
        channel.onMessage((message) => {
          if (typeof message !== 'string') return;
          // The client's id, copied as is: `"id":"…"` (no escapes in the bench's ids).
          const at = message.indexOf('"id":"') + 6;
          const id = message.slice(at, message.indexOf('"', at));
          channel.sendMessage(
            `{"type":"ack","id":"${id}","recordId":"${ZERO32}","contentHash":"${ZERO32}","acceptedAt":${Date.now()}}`,
          );
        });
      });
      pc.setRemoteDescription(withoutCandidates(offerSdp), 'offer');
      if (pc.gatheringState() !== 'complete') await gathered;
      const local = pc.localDescription();
      if (!local) throw new BrokenBench('sink: no local description');
      return withoutTrickleOption(withMaxMessageSize(local.sdp, maxMessageBytes));
    },
    close() {
      for (const pc of peers) {
        try {
          pc.close();
        } catch {}
      }
    },
  };
}

// ---------------------------------------------------------------------------
// The Chromium client (one page; one connection to the relay, one to the sink).
// ---------------------------------------------------------------------------

// Runs in the page (kept as text: this package compiles without DOM types).
const PAGE_SCRIPT = `
window.conns = {};
window.makeOffer = async (name) => {
  const pc = new RTCPeerConnection();
  const dc = pc.createDataChannel('records', { protocol: ${JSON.stringify(protocol)} });
  dc.bufferedAmountLowThreshold = 256 * 1024;
  const conn = { pc, dc, run: undefined, waiters: [] };
  window.conns[name] = conn;
  dc.onbufferedamountlow = () => { for (const wake of conn.waiters.splice(0)) wake(); };
  dc.onmessage = (event) => {
    const run = conn.run;
    if (!run || !event.data.includes('"id":"' + run.prefix)) return;
    const data = JSON.parse(event.data);
    // Protocol v2 sends consecutive acks together, in one acks message.
    const answers = data.type === 'acks' ? data.acks.map((ack) => ({ type: 'ack', ...ack })) : [data];
    for (const answer of answers) {
      run.answered += 1;
      if (answer.type === 'ack') run.acks += 1;
      else { run.nacks += 1; run.codes[answer.code] = (run.codes[answer.code] || 0) + 1; }
    }
    if (run.answered >= run.total) {
      conn.run = undefined;
      run.done({ acks: run.acks, nacks: run.nacks, codes: run.codes, elapsedMs: performance.now() - run.startedAt });
    }
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
  });
  return pc.localDescription.sdp;
};
window.acceptAnswer = async (name, sdp) => {
  const { pc, dc } = window.conns[name];
  await pc.setRemoteDescription({ type: 'answer', sdp });
  await new Promise((resolve, reject) => {
    if (dc.readyState === 'open') resolve();
    dc.onopen = () => resolve();
    setTimeout(() => reject(new Error('channel not open: ' + pc.connectionState)), 10000);
  });
};
window.publish = async (name, count, payloadBytes, prefix) => {
  const conn = window.conns[name];
  const filler = 'x'.repeat(Math.max(0, payloadBytes - 20));
  const finished = new Promise((done) => {
    conn.run = { prefix, total: count, answered: 0, acks: 0, nacks: 0, codes: {}, startedAt: performance.now(), done };
  });
  for (let i = 0; i < count; i++) {
    while (conn.dc.bufferedAmount > 1024 * 1024) await new Promise((wake) => conn.waiters.push(wake));
    conn.dc.send(JSON.stringify({ type: 'publish', id: prefix + i, topic: 'demo', payload: { n: i, fill: filler } }));
  }
  return finished;
};
`;

interface RunResult {
  acks: number;
  nacks: number;
  codes: Record<string, number>;
  elapsedMs: number;
}

function checkAllAcked(what: string, result: RunResult, expected: number): void {
  if (result.acks !== expected || result.nacks !== 0) {
    throw new BrokenBench(
      `${what}: ${result.acks} acks, ${result.nacks} nacks (${JSON.stringify(result.codes)}) of ${expected}`,
    );
  }
}

// ---------------------------------------------------------------------------

const relay = await startTestRelay({
  LOG_LEVEL: 'warn',
  MAX_MESSAGE_BYTES: '65536',
  MAX_PAYLOAD_BYTES: '16384',
  HEARTBEAT_MS: '2000',
  PUBLISH_RATE_PER_SESSION: '0',
  PUBLISH_RATE_PER_SUBJECT: '0',
  // The client keeps up to 1 MiB (≈ 4,000 publishes) in flight.
  RECORD_BUFFER_MAX: '100000',
  RECORD_BUFFER_MAX_PER_SESSION: '50000',
});
const sink = createSink(
  rtcConfigFor({ ...relay.config, ice: { ...relay.config.ice, udpPort: await freeUdpPort() } }),
  relay.config.maxMessageBytes,
);
// The stand-in for chain-writer is no worker at all: queued jobs are dropped between runs
// (outside the timed part) so that Redis does not fill up.
const recordsQueue = createQueue(relay.bus, 'records');
const session = { subject: 'bench', topics: ['demo'], tokenExpiresAt: Date.now() + 3_600_000 };
const clients: ClientProcess[] = [];
let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
let runNo = 0;
const rows: BenchRow[] = [];

/** Runs one relay measurement and checks the queue took exactly what was acked. */
async function onRelay<T extends RunResult>(run: () => Promise<T>): Promise<T> {
  const before = relay.app.stats().recordsQueued;
  const result = await run();
  const queued = relay.app.stats().recordsQueued - before;
  if (queued !== result.acks)
    throw new BrokenBench(`relay acked ${result.acks} records but queued ${queued}`);
  await recordsQueue.drain();
  return result;
}

try {
  let relayRate: number | undefined;

  if (only.has('node') || only.has('p99')) {
    const [toRelay, toSink] = await Promise.all([ClientProcess.spawn(), ClientProcess.spawn()]);
    clients.push(toRelay, toSink);
    await relay.connect(toRelay, session, { protocol });
    const offer = await toSink.offer({ protocol });
    toSink.command({ cmd: 'answer', sdp: await sink.answer(offer) });
    await toSink.waitFor((e) => e.event === 'open');

    const publish = (client: ClientProcess, n: number, ratePerSecond?: number) =>
      client.publishMany({
        count: n,
        payloadBytes: PAYLOAD_BYTES,
        topic: 'demo',
        idPrefix: `n${runNo++}-`,
        ratePerSecond,
        timeoutMs: 300_000,
      });

    // Warm-up, and the relay's acks checked: each content hash is that of the payload sent.
    const warm = await onRelay(() =>
      toRelay.publishMany({
        count: 500,
        payloadBytes: PAYLOAD_BYTES,
        topic: 'demo',
        idPrefix: 'check-',
        listAcks: true,
      }),
    );
    checkAllAcked('warm-up', warm, 500);
    const filler = 'x'.repeat(PAYLOAD_BYTES - 20);
    for (const ack of warm.acked ?? []) {
      const n = Number(ack.id.slice('check-'.length));
      if (ack.contentHash !== contentHashOf(canonicalPayload({ n, fill: filler })))
        throw new BrokenBench(`ack ${ack.id}: wrong content hash ${ack.contentHash}`);
    }
    if (!oursOnly) checkAllAcked('sink warm-up', await publish(toSink, 2000), 2000);

    const rate = (result: RunResult) => (result.acks / result.elapsedMs) * 1000;
    // CPU time per record (µs, all threads) of this process (the relay's or the sink's) and of
    // the client's, per run: where the time goes, for the note.
    const cpu = {
      relay: [] as number[],
      sink: [] as number[],
      relayClient: [] as number[],
      sinkClient: [] as number[],
    };
    const measured = async <T extends { cpuMs: number }>(
      server: number[],
      client: number[],
      run: () => Promise<T>,
    ) => {
      const before = process.cpuUsage();
      const result = await run();
      const used = process.cpuUsage(before);
      server.push((used.user + used.system) / count);
      client.push((result.cpuMs * 1000) / count);
      return result;
    };
    const runs = await alternate({
      rounds,
      ours: async () => {
        if (baselineOnly) return 1;
        const result = await measured(cpu.relay, cpu.relayClient, () =>
          onRelay(() => publish(toRelay, count)),
        );
        checkAllAcked('relay', result, count);
        return rate(result);
      },
      baseline: async () => {
        if (oursOnly) return 1;
        const result = await measured(cpu.sink, cpu.sinkClient, () => publish(toSink, count));
        checkAllAcked('sink', result, count);
        return rate(result);
      },
    });
    const med = (values: number[]) => (values.length ? summarize(values).median.toFixed(0) : '–');
    const cpuNote = `CPU µs/record, server process: relay ${med(cpu.relay)}, sink ${med(cpu.sink)}; client: ${med(cpu.relayClient)} / ${med(cpu.sinkClient)}`;
    console.log(cpuNote);
    relayRate = [...runs.ours].sort((a, b) => a - b)[runs.ours.length >> 1]!;
    if (only.has('node') && !oursOnly) {
      const row = compareRow({
        id: 'relay-ingest-node',
        what: `Relay ingest, node-datachannel client, ${count.toLocaleString('en-US')} × ${PAYLOAD_BYTES} B payloads`,
        unit: 'records/s',
        better: 'higher',
        baselineName: 'bare node-datachannel sink',
        runs,
        bar: { text: '≥ 0.8×', ratio: 0.8 },
        note: cpuNote,
      });
      reportRow(row);
      rows.push(row);
    }

    if (only.has('p99')) {
      const paced = pacedRate || Math.max(100, Math.round(relayRate / 2));
      const n = Math.round(paced * PACED_SECONDS);
      const latency = await alternate({
        rounds,
        ours: async () => {
          const result = await onRelay(() => publish(toRelay, n, paced));
          checkAllAcked('relay paced', result, n);
          return result.latencyMs.p99;
        },
        baseline: async () => {
          if (oursOnly) return 1;
          const result = await publish(toSink, n, paced);
          checkAllAcked('sink paced', result, n);
          return result.latencyMs.p99;
        },
      });
      if (!oursOnly) {
        const row = compareRow({
          id: 'relay-ack-p99',
          what: `Ack p99, node-datachannel client paced at ${paced.toLocaleString('en-US')} records/s (${pacedRate ? '--paced-rate' : "half the relay's rate"})`,
          unit: 'ms',
          better: 'lower',
          baselineName: 'bare node-datachannel sink',
          runs: latency,
        });
        row.bar = { text: '≤ 25 ms', met: row.ours.median <= 25 };
        reportRow(row);
        rows.push(row);
      }
    }
  }

  if (only.has('chromium')) {
    browser = await launchChromium();
    const page = await browser.context.newPage();
    await page.evaluate(PAGE_SCRIPT);
    const evaluate = async <T>(expression: string) => (await page.evaluate(expression)) as T;
    const relayOffer = await evaluate<string>(`makeOffer('relay')`);
    const { answerSdp } = await relay.createSession({ ...session, offerSdp: relayOffer });
    await evaluate(`acceptAnswer('relay', ${JSON.stringify(answerSdp)})`);
    const sinkOffer = await evaluate<string>(`makeOffer('sink')`);
    await evaluate(`acceptAnswer('sink', ${JSON.stringify(await sink.answer(sinkOffer))})`);
    const publish = (name: 'relay' | 'sink', n: number) =>
      evaluate<RunResult>(`publish('${name}', ${n}, ${PAYLOAD_BYTES}, 'c${runNo++}-')`);

    checkAllAcked('chromium warm-up', await onRelay(() => publish('relay', 2000)), 2000);
    if (!oursOnly) checkAllAcked('chromium sink warm-up', await publish('sink', 2000), 2000);
    const rate = (result: RunResult) => (result.acks / result.elapsedMs) * 1000;
    const runs = await alternate({
      rounds,
      ours: async () => {
        const result = await onRelay(() => publish('relay', chromiumCount));
        checkAllAcked('chromium relay', result, chromiumCount);
        return rate(result);
      },
      baseline: async () => {
        if (oursOnly) return 1;
        const result = await publish('sink', chromiumCount);
        checkAllAcked('chromium sink', result, chromiumCount);
        return rate(result);
      },
    });
    if (!oursOnly) {
      const row = compareRow({
        id: 'relay-ingest-chromium',
        what: `Relay ingest, headless Chromium client, ${chromiumCount.toLocaleString('en-US')} × ${PAYLOAD_BYTES} B payloads`,
        unit: 'records/s',
        better: 'higher',
        baselineName: 'bare node-datachannel sink',
        runs,
        bar: { text: '≥ 0.8×', ratio: 0.8 },
      });
      reportRow(row);
      rows.push(row);
    }
  }
} catch (error) {
  console.error(error instanceof BrokenBench ? `broken: ${error.message}` : error);
  process.exitCode = 1;
} finally {
  await browser?.close();
  for (const client of clients) await client.stop();
  sink.close();
  await recordsQueue.close();
  await relay.close();
  nodeDataChannel.cleanup();
}
