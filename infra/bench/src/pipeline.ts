/**
 * The whole pipeline under load (issue 7): client → relay ack → writer store → batch → anchor
 * tx → indexer → receipt back over the data channel, on the real stack (startStack: anvil
 * with 1 s blocks, every service its own process), first on Postgres, then on PGlite.
 * Publishers are processes of their own (infra/faults/bench/peer.ts, node-datachannel), each
 * pacing its share of the offered rate and timing every record's ack and first `included`
 * receipt from its send.
 *
 * A step offers one rate for a window and then waits for the receipts still due. The step
 * KEPT UP when: acks ≥ 97 % of the offered rate, every acked record got its receipt (acks =
 * receipts delivered; a receipt implies stored, batched and anchored), and the receipt p99
 * of the window's last quarter (by send time) is within 1.2× its first quarter's. The ramp
 * offers rising rates until a step does not keep up; the highest one that did is confirmed
 * for the sustain window (two minutes in the full run) and, if it fails there, the one below.
 * At the end the database is read: acked = stored = batched = anchored (included/final).
 *
 * Rows:
 *   pipeline-postgres / pipeline-pglite  records/s sustained. Baseline: what the relay acks
 *     in the same run (the highest ack rate of any step: the relay alone, before the chain
 *     services fall behind). Bars ≥ 5,000 / ≥ 2,000 records/s.
 *   record-to-receipt  p50 ms, at 1,000 records/s (the quick run: its high step) with 1 s
 *     blocks. Baseline: the block time (1,000 ms); bar ≤ block time + 300 ms.
 *   gas-per-record-low / gas-per-record-high  anchorBatch gasUsed ÷ records, from the real
 *     receipts on anvil, at the lowest step and at the sustained rate. Baseline: one tx per
 *     record (the mean gasUsed of one anchorBatch tx in the same run).
 *   memory  RSS of each service: end of the memory run ÷ after its warm-up (10 min at the
 *     sustained rate on Postgres; quick: the whole ~30 s run on PGlite). Bar ≤ 1.1×.
 *
 * Run: `npx tsx infra/bench/src/pipeline.ts [--quick] [--db postgres,pglite]
 *       [--rates 500,1000,…] [--step-s 20] [--sustain-s 120] [--memory-s 600]
 *       [--per-publisher 2500]`
 *   --quick  PGlite only (the Postgres row says so), steps of 200 and 1,000 records/s of
 *            10 s each, no separate sustain or memory run; < 90 s.
 * Environment: PIPELINE_LOG=1 prints every service log line; CPU_PROFILE_DIR is passed on
 * to the stack (every service runs with --cpu-prof); PEER_CPU_PROFILE_DIR profiles the
 * publisher processes the same way. Exits non-zero only when broken (the
 * stack failed, or the database disagrees with what was acked).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { streamAnchorAbi } from '@streamanchor/contracts';
import { type Stack, startStack } from '@streamanchor/stack';
import {
  type BenchRow,
  benchOption,
  createThrowawayPostgres,
  isQuick,
  percentile,
  reportRow,
  summarize,
  TEST_REDIS_URL,
  testRedisPrefix,
} from '@streamanchor/testing';
import { sql } from 'kysely';
import { createPublicClient, http, parseEventLogs } from 'viem';

const here = dirname(fileURLToPath(import.meta.url));
const PEER = resolve(here, '../../faults/bench/peer.ts');
const PEER_CWD = resolve(here, '../../faults');
/** PEER_CPU_PROFILE_DIR: every publisher process runs with --cpu-prof and writes its profile there. */
const PEER_PROFILE_ARGS = process.env.PEER_CPU_PROFILE_DIR
  ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PEER_CPU_PROFILE_DIR}`]
  : [];
const quick = isQuick();

const option = (name: string) => benchOption(name);
const numbers = (text: string | undefined) =>
  text
    ?.split(',')
    .map(Number)
    .filter((n) => n > 0);

const DBS = (option('--db') ?? (quick ? 'pglite' : 'postgres,pglite'))
  .split(',')
  .filter((d): d is 'postgres' | 'pglite' => d === 'postgres' || d === 'pglite');
const RATES: Record<'postgres' | 'pglite', number[]> = {
  postgres: numbers(option('--rates')) ?? (quick ? [200, 1000] : [1000, 2000, 3000, 4000, 5000]),
  pglite: numbers(option('--rates')) ?? (quick ? [200, 1000] : [500, 1000, 2000, 3000]),
};
const STEP_MS = Number(option('--step-s') ?? (quick ? 10 : 20)) * 1000;
const SUSTAIN_MS = quick ? 0 : Number(option('--sustain-s') ?? 120) * 1000;
/**
 * Records/s one publisher process offers at most: a step runs ⌈rate ÷ this⌉ of them (≤ 4).
 * The publishers share the two cores with the stack; each process costs its own event loop,
 * SCTP/DTLS threads and GC, so fewer, busier ones leave more of the machine to what is
 * measured (at 5,000/s, four at 1,250/s took ~45 % of a core, two at 2,500/s ~30 %).
 */
const PER_PUBLISHER = Number(option('--per-publisher') ?? 2500);
const MEMORY_MS = quick ? 0 : Number(option('--memory-s') ?? 600) * 1000;
const WARMUP_MS = quick ? 1500 : 3000;
/** After a step's window: how long its publishers wait for the receipts still due. */
const RECEIPT_WAIT_MS = quick ? 8000 : 30_000;
const BLOCK_MS = 1000;
const LATENCY_RATE = 1000;

const started = Date.now();
const say = (line: string) =>
  process.stdout.write(`[pipeline] +${((Date.now() - started) / 1000).toFixed(0)}s ${line}\n`);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

function mint(secret: string, sub: string): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const iat = Math.floor(Date.now() / 1000);
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, topics: ['demo'], iat, exp: iat + 6 * 3600 })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

// -----------------------------------------------------------------------------------------------
// Publisher processes

interface PeerResult {
  sent: number;
  acked: number;
  receipts: number;
  nacks: Record<string, number>;
  refused: string[];
  disconnects: string[];
  extra: Record<string, number>;
  whole: { sent: number; acked: number; nacked: number; unanswered: number; receipted: number };
}

class Publisher {
  result: PeerResult | undefined;
  sessions = 0;
  private exited = false;
  private readonly child: ChildProcess;

  constructor(
    readonly name: string,
    env: Record<string, string>,
  ) {
    this.child = spawn(process.execPath, [...PEER_PROFILE_ARGS, '--import', 'tsx', PEER], {
      cwd: PEER_CWD,
      env: { ...process.env, MODE: 'publish', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(line) as Record<string, unknown>;
      } catch (error) {
        if (line.startsWith('{"event":"result"')) {
          say(
            `[${name}] result line of ${line.length} chars unreadable: ${(error as Error).message}`,
          );
        }
        return;
      }
      if (event.event === 'session') this.sessions += 1;
      else if (event.event === 'result') this.result = event as unknown as PeerResult;
      else if (event.event === 'error' || event.event === 'log')
        say(`[${name}] ${String(event.message).slice(0, 300)}`);
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => {
      if (/error|abort|throw/i.test(line)) say(`[${name}] stderr: ${line.slice(0, 300)}`);
    });
    this.child.once('exit', () => {
      this.exited = true;
    });
  }

  async until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!check() && !this.exited && Date.now() < deadline) await sleep(50);
    return check();
  }

  send(cmd: string) {
    if (!this.exited) this.child.stdin!.write(`${JSON.stringify({ cmd })}\n`);
  }

  async stop(timeoutMs: number): Promise<PeerResult | undefined> {
    this.send('stop');
    await this.until(() => this.result !== undefined, timeoutMs);
    if (this.result === undefined) say(`[${this.name}] no result within ${timeoutMs} ms of stop`);
    if (!this.exited) {
      const exited = new Promise<void>((done) => this.child.once('exit', () => done()));
      this.child.stdin!.end();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    return this.result;
  }
}

// -----------------------------------------------------------------------------------------------
// /proc figures

function rssMb(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
function cpuMs(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

// -----------------------------------------------------------------------------------------------
// Steps

interface Step {
  label: string;
  rate: number;
  windowMs: number;
  ackRate: number;
  acked: number;
  receipted: number;
  /** Receipt latency (ms from send) of records sent in the window. */
  p50: number;
  p99: number;
  q1p99: number;
  q4p99: number;
  ackP99: number;
  keptUp: boolean;
  why: string;
  fromBlock: bigint;
  toBlock: bigint;
  cpu: Record<string, number>;
}

interface Run {
  stack: Stack;
  tmp: string;
  kind: 'postgres' | 'pglite';
  steps: number;
  acked: number;
  rpc: ReturnType<typeof createPublicClient>;
}

async function runStep(run: Run, rate: number, windowMs: number, label: string): Promise<Step> {
  const { stack, tmp } = run;
  const index = run.steps++;
  const count = Math.max(1, Math.min(4, Math.ceil(rate / PER_PUBLISHER)));
  const files = Array.from({ length: count }, (_, i) => join(tmp, `s${index}-p${i}.txt`));
  const publishers = files.map(
    (file, i) =>
      new Publisher(`p${i}`, {
        API: stack.urls.api,
        TOKEN: mint(stack.jwtSecret, `pub-${i}`),
        RATE: String(rate / count),
        ID_PREFIX: `s${index}-p${i}-`,
        RECEIPTS_FILE: file,
        RECEIPT_WAIT_MS: String(RECEIPT_WAIT_MS),
      }),
  );
  for (const p of publishers) await p.until(() => p.sessions > 0, 30_000);
  await sleep(WARMUP_MS);
  const fromBlock = await run.rpc.getBlockNumber();
  const pids = stack.services.map((s) => [s.name, s.child.pid] as const);
  const cpu0 = pids.map(([, pid]) => cpuMs(pid));
  for (const p of publishers) p.send('measure');
  const t0 = Date.now();
  await sleep(windowMs);
  const t1 = Date.now();
  const cpu = Object.fromEntries(
    pids.map(([name, pid], i) => [name, ((cpuMs(pid) - cpu0[i]!) / (t1 - t0)) * 100]),
  );
  const results = await Promise.all(publishers.map((p) => p.stop(RECEIPT_WAIT_MS + 30_000)));
  const toBlock = await run.rpc.getBlockNumber();

  let acked = 0;
  let receipted = 0;
  let wholeAcked = 0;
  let missing = 0;
  const problems: string[] = [];
  // Peer connections that went `disconnected` (the session ends only if it lasts).
  let transient = 0;
  for (const [i, r] of results.entries()) {
    if (!r) {
      problems.push(`publisher ${i} gave no result`);
      continue;
    }
    acked += r.acked;
    wholeAcked += r.whole.acked;
    receipted += r.whole.receipted;
    missing += r.whole.acked - r.whole.receipted;
    if (process.env.PIPELINE_LOG === '1') say(`publisher ${i}: ${JSON.stringify(r.extra)}`);
    if (r.disconnects.length) problems.push(`disconnects: ${r.disconnects.join('; ')}`);
    transient += r.extra['peer connection disconnected'] ?? 0;
    const nacks = Object.entries(r.nacks);
    if (nacks.length) problems.push(`nacks ${nacks.map(([c, n]) => `${c} ${n}`).join(', ')}`);
  }
  run.acked += wholeAcked;
  // Receipt latencies by send time, of the records sent in the window.
  const samples: { at: number; ack: number; receipt: number }[] = [];
  for (const file of files) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [at, ack, receipt] = line.split(' ').map(Number);
      if (at === undefined || ack === undefined || receipt === undefined) continue;
      if (at >= t0 && at < t1) samples.push({ at, ack, receipt });
    }
  }
  const quarter = (q: number) =>
    samples
      .filter((s) => s.at >= t0 + (q * windowMs) / 4 && s.at < t0 + ((q + 1) * windowMs) / 4)
      .map((s) => s.receipt);
  const receipts = samples.map((s) => s.receipt);
  const ackRate = acked / (windowMs / 1000);
  const step: Step = {
    label,
    rate,
    windowMs,
    ackRate,
    acked: wholeAcked,
    receipted,
    p50: percentile(receipts, 50),
    p99: percentile(receipts, 99),
    q1p99: percentile(quarter(0), 99),
    q4p99: percentile(quarter(3), 99),
    ackP99: percentile(
      samples.map((s) => s.ack),
      99,
    ),
    keptUp: false,
    why: '',
    fromBlock,
    toBlock,
    cpu,
  };
  if (ackRate < 0.97 * rate) problems.push(`acks ${fmt(ackRate)}/s < 97 % of ${rate}/s`);
  if (missing > 0) problems.push(`${missing} acked records without a receipt`);
  if (!(step.q4p99 <= 1.2 * step.q1p99))
    problems.push(`receipt p99 last quarter ${fmt(step.q4p99)} > 1.2× first ${fmt(step.q1p99)}`);
  step.keptUp = problems.length === 0;
  step.why = problems.join('; ');
  say(
    `${run.kind} ${label} ${rate}/s: acked ${fmt(ackRate)}/s (p99 ${fmt(step.ackP99)} ms), receipts ` +
      `${receipted}/${wholeAcked}, receipt p50 ${fmt(step.p50)} p99 ${fmt(step.p99)} ms ` +
      `(q1 ${fmt(step.q1p99)} q4 ${fmt(step.q4p99)}), CPU ${Object.entries(cpu)
        .map(([n, c]) => `${n} ${fmt(c)}%`)
        .join(' ')}${transient ? `, ${transient} peer connection(s) went disconnected` : ''} → ${
        step.keptUp ? 'KEPT UP' : `behind: ${step.why}`
      }`,
  );
  if (!step.keptUp || windowMs >= 60_000) {
    // Where a long window drifts: receipt p99 per 10 s of send time.
    const slices: string[] = [];
    for (let from = t0; from < t1; from += 10_000) {
      const slice = samples
        .filter((s) => s.at >= from && s.at < from + 10_000)
        .map((s) => s.receipt);
      slices.push(fmt(percentile(slice, 99)));
    }
    say(`  receipt p99 per 10 s: ${slices.join(' ')} ms`);
  }
  if (!step.keptUp) await drain(run);
  return step;
}

/** Records anchored on chain so far (BatchAnchored recordCount, audit heads included). */
async function anchoredOnChain(run: Run): Promise<number> {
  const logs = await run.rpc.getLogs({
    address: run.stack.contractAddress,
    fromBlock: 0n,
    toBlock: 'latest',
  });
  return parseEventLogs({ abi: streamAnchorAbi, logs, eventName: 'BatchAnchored' }).reduce(
    (n, event) => n + Number(event.args.recordCount),
    0,
  );
}

/**
 * Waits until at least `records` are anchored on chain, or the count stopped moving for
 * `stallMs`. Returns the count.
 */
async function waitAnchored(run: Run, records: number, stallMs: number): Promise<number> {
  let last = -1;
  let movedAt = Date.now();
  for (;;) {
    const now = await anchoredOnChain(run);
    if (now >= records) return now;
    if (now !== last) {
      last = now;
      movedAt = Date.now();
    } else if (Date.now() - movedAt > stallMs) return now;
    await sleep(500);
  }
}

/** After a step that fell behind: let the chain services catch up before the next one. */
async function drain(run: Run): Promise<void> {
  const anchored = await waitAnchored(run, run.acked, quick ? 3000 : 20_000);
  if (anchored < run.acked) say(`drain: ${anchored} of ${run.acked} acked records anchored`);
}

/**
 * The stack counts the chain services as up once spawned; they may take a while to open the
 * database and start (tsx, migrations). Publishes 50 records/s until the first batch is on
 * chain, then waits for that publisher's receipts: the whole path works end to end.
 */
async function warmUp(run: Run): Promise<void> {
  const t0 = Date.now();
  const file = join(run.tmp, 'warm.txt');
  const publisher = new Publisher('warm', {
    API: run.stack.urls.api,
    TOKEN: mint(run.stack.jwtSecret, 'warm'),
    RATE: '50',
    ID_PREFIX: 'warm-',
    RECEIPTS_FILE: file,
    RECEIPT_WAIT_MS: '60000',
  });
  await publisher.until(() => publisher.sessions > 0, 60_000);
  await waitAnchored(run, 1, 180_000);
  const result = await publisher.stop(90_000);
  run.acked += result?.whole.acked ?? 0;
  say(
    `warm-up: ${result?.whole.receipted ?? 0}/${result?.whole.acked ?? 0} receipts, ${fmt((Date.now() - t0) / 1000)} s`,
  );
}

// -----------------------------------------------------------------------------------------------
// Gas from the chain

async function gasPerRecord(
  run: Run,
  from: bigint,
  to: bigint,
): Promise<{ perRecord: number; perTx: number; batches: number; records: number }> {
  const logs = await run.rpc.getLogs({
    address: run.stack.contractAddress,
    fromBlock: from,
    toBlock: to,
  });
  const events = parseEventLogs({ abi: streamAnchorAbi, logs, eventName: 'BatchAnchored' });
  let gas = 0n;
  let records = 0;
  const txs = new Set<`0x${string}`>();
  for (const event of events) {
    records += Number(event.args.recordCount);
    txs.add(event.transactionHash);
  }
  for (const hash of txs) gas += (await run.rpc.getTransactionReceipt({ hash })).gasUsed;
  return {
    perRecord: records ? Number(gas) / records : Number.NaN,
    perTx: txs.size ? Number(gas) / txs.size : Number.NaN,
    batches: events.length,
    records,
  };
}

// -----------------------------------------------------------------------------------------------

interface DbOutcome {
  kind: 'postgres' | 'pglite';
  steps: Step[];
  sustained: number;
  sustainStep: Step | undefined;
  ackMax: number;
  low: Awaited<ReturnType<typeof gasPerRecord>>;
  high: Awaited<ReturnType<typeof gasPerRecord>>;
  latencyStep: Step | undefined;
  memory: { name: string; startMb: number; endMb: number; slopeMbPerMin: number }[];
  memoryMs: number;
  memoryRate: number;
  counts: string;
}

async function runDatabase(kind: 'postgres' | 'pglite'): Promise<DbOutcome> {
  const tmp = mkdtempSync(join(tmpdir(), 'sa-pipeline-'));
  const postgres = kind === 'postgres' ? await createThrowawayPostgres('pipeline') : undefined;
  let stack: Stack | undefined;
  let broken: string | undefined;
  try {
    stack = await startStack({
      env: {
        ...process.env,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: testRedisPrefix('pipeline'),
        DATA_DIR: join(tmp, 'data'),
        DATABASE_URL: postgres?.url,
        HOST: '127.0.0.1',
        PORT: '0',
        ANVIL_PORT: '0',
        ANVIL_BLOCK_TIME: String(BLOCK_MS / 1000),
        JWT_SECRET: undefined,
        ICE_UDP_PORT: undefined,
        LOG_LEVEL: process.env.PIPELINE_LOG === '1' ? 'info' : 'warn',
        // Every publisher is 127.0.0.1 and offers thousands of records/s: the per-client
        // limits (which the relay's and gateway's own tests exercise) are out of the way.
        SESSION_RATE_PER_IP: '1000000',
        PUBLISH_RATE_PER_SESSION: '0',
        PUBLISH_RATE_PER_SUBJECT: '0',
        RECORD_BUFFER_MAX_PER_SESSION: '20000',
      },
      output: (line) => {
        if (process.env.PIPELINE_LOG === '1' || /FATAL|ERROR|exited|^\[stack\]/.test(line))
          process.stdout.write(`${line.slice(0, 600)}\n`);
      },
      clearRedisOnStop: true,
    });
    void stack.failed.then(({ service, code, signal }) => {
      broken = `${service} exited (${signal ?? `exit ${code}`})`;
      say(broken);
    });
    const rpc = createPublicClient({ transport: http(stack.urls.rpc) });
    const run: Run = { stack, tmp, kind, steps: 0, acked: 0, rpc };
    const rssAt = () => stack!.services.map((s) => rssMb(s.child.pid));
    await warmUp(run);
    const rssStart = rssAt();
    const rssStartAt = Date.now();

    const steps: Step[] = [];
    for (const rate of RATES[kind]) {
      const step = await runStep(run, rate, STEP_MS, 'ramp');
      steps.push(step);
      if (broken) throw new Error(broken);
      if (!step.keptUp) break;
    }
    const ackMax = Math.max(...steps.map((s) => s.ackRate));
    let candidates = steps.filter((s) => s.keptUp).map((s) => s.rate);
    let sustainStep: Step | undefined;
    if (SUSTAIN_MS > 0) {
      candidates = candidates.reverse();
      for (const rate of candidates) {
        const step = await runStep(run, rate, SUSTAIN_MS, 'sustain');
        steps.push(step);
        if (step.keptUp) {
          sustainStep = step;
          break;
        }
      }
    } else {
      sustainStep = steps.filter((s) => s.keptUp).at(-1);
    }
    const sustained = sustainStep?.rate ?? 0;

    let memory: DbOutcome['memory'];
    let memoryMs: number;
    let memoryRate = sustained;
    if (MEMORY_MS > 0 && sustained > 0 && kind === 'postgres') {
      const samples: { at: number; rss: number[] }[] = [];
      const timer = setInterval(
        () => samples.push({ at: Date.now(), rss: rssAt() }),
        Math.max(1000, MEMORY_MS / 120),
      );
      await runStep(run, sustained, MEMORY_MS, 'memory');
      clearInterval(timer);
      // After the first tenth (warm-up: JIT, pools, caches) against the end.
      const warm = samples.filter((s) => s.at - samples[0]!.at >= MEMORY_MS / 10);
      memory = stack.services.map((service, i) => {
        const xs = warm.map((s) => (s.at - warm[0]!.at) / 60_000);
        const ys = warm.map((s) => s.rss[i]!);
        return {
          name: service.name,
          startMb: ys[0]!,
          endMb: ys.at(-1)!,
          slopeMbPerMin: slope(xs, ys),
        };
      });
      memoryMs = MEMORY_MS;
    } else {
      memoryRate = Math.max(...steps.map((s) => s.rate));
      const end = rssAt();
      memory = stack.services.map((service, i) => ({
        name: service.name,
        startMb: rssStart[i]!,
        endMb: end[i]!,
        slopeMbPerMin: ((end[i]! - rssStart[i]!) / (Date.now() - rssStartAt)) * 60_000,
      }));
      memoryMs = Date.now() - rssStartAt;
    }

    const lowStep = steps[0]!;
    const highStep = sustainStep ?? steps.filter((s) => s.keptUp).at(-1) ?? steps.at(-1)!;
    const low = await gasPerRecord(run, lowStep.fromBlock, lowStep.toBlock);
    const high = await gasPerRecord(run, highStep.fromBlock, highStep.toBlock);
    const latencyStep = steps.find((s) => s.rate === LATENCY_RATE) ?? steps.at(-1);

    // acked = stored = batched = anchored, from the database (PGlite: once the stack stopped).
    await waitAnchored(run, run.acked, 20_000);
    // PGlite belongs to the chain-services process: read it once the stack stopped.
    if (kind === 'pglite') await stack.stop();
    const handle = await stack.openDatabase();
    let counts: string;
    let stageText = '';
    try {
      const found = await handle.db
        .selectFrom('record_leaves as records')
        .leftJoin('batches', 'batches.batch_id', 'records.batch_id')
        .select(['records.batch_id', 'batches.status'])
        .where('records.topic', '=', 'demo')
        .execute();
      const row = {
        stored: found.length,
        batched: found.filter((r) => r.batch_id !== null).length,
        anchored: found.filter((r) => r.status === 'included' || r.status === 'final').length,
      };
      counts = `acked ${run.acked}, stored ${row.stored}, batched ${row.batched}, anchored ${row.anchored}`;
      say(`${kind}: ${counts}`);
      // Where a record's time goes, median per stage (ms), from the rows' own timestamps.
      const { rows: stages } = await sql<Record<string, number>>`
        select
          percentile_cont(0.5) within group (order by extract(epoch from r.stored_at) * 1000 - r.accepted_at) as accepted_to_stored,
          percentile_cont(0.5) within group (order by extract(epoch from (b.created_at - r.stored_at)) * 1000) as stored_to_cut,
          percentile_cont(0.5) within group (order by extract(epoch from (b.sent_at - b.created_at)) * 1000) as cut_to_signed,
          percentile_cont(0.5) within group (order by extract(epoch from (b.included_at - b.sent_at)) * 1000) as signed_to_indexed,
          percentile_cont(0.5) within group (order by extract(epoch from (n.sent_at - b.included_at)) * 1000) as indexed_to_enqueued,
          avg(b.record_count) as records_per_batch
          from record_leaves r
          join batches b on b.batch_id = r.batch_id
          join receipt_notices n on n.batch_id = b.batch_id and n.revision = 1
         where r.topic = 'demo'`.execute(handle.db);
      stageText = Object.entries(stages[0] ?? {})
        .map(([name, ms]) => `${name} ${fmt(Number(ms))}`)
        .join(', ');
      say(`${kind} stage medians (ms): ${stageText}`);
      if (row.stored < run.acked) broken = `${run.acked - row.stored} acked records not stored`;
    } finally {
      await handle.close();
    }
    return {
      kind,
      steps,
      sustained,
      sustainStep,
      ackMax,
      low,
      high,
      latencyStep,
      memory,
      memoryMs,
      memoryRate,
      counts,
    };
  } finally {
    await stack?.stop().catch((error: Error) => say(`stop: ${error.message}`));
    await postgres?.drop().catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
    if (broken) {
      say(`BROKEN: ${broken}`);
      process.exitCode = 1;
    }
  }
}

function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return Number.NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den ? num / den : Number.NaN;
}

const one = (value: number) => ({ min: value, median: value, max: value });

function rows(outcomes: DbOutcome[]): BenchRow[] {
  const out: BenchRow[] = [];
  for (const kind of ['postgres', 'pglite'] as const) {
    const o = outcomes.find((x) => x.kind === kind);
    const barRate = kind === 'postgres' ? 5000 : 2000;
    const windowText = `${(SUSTAIN_MS || STEP_MS) / 1000} s`;
    if (!o) {
      out.push({
        id: `pipeline-${kind}`,
        what: `Whole pipeline on ${kind === 'postgres' ? 'Postgres' : 'PGlite'}, sustained`,
        unit: 'records/s',
        better: 'higher',
        ours: one(0),
        bar: { text: `≥ ${barRate.toLocaleString('en-US')} records/s`, met: false },
        note: `not run${quick ? ' in --quick (PGlite only)' : ` (--db ${DBS.join(',')})`}`,
      });
      continue;
    }
    out.push({
      id: `pipeline-${kind}`,
      what: `Whole pipeline on ${kind === 'postgres' ? 'Postgres' : 'PGlite'}, sustained ${windowText} (acks = receipts, receipt p99 flat)`,
      unit: 'records/s',
      better: 'higher',
      ours: one(o.sustained),
      baseline: { name: 'relay ack rate, same run', ...one(o.ackMax) },
      ratio: one(o.sustained / o.ackMax),
      bar: { text: `≥ ${barRate.toLocaleString('en-US')} records/s`, met: o.sustained >= barRate },
      note:
        `steps ${o.steps.map((s) => `${s.label} ${s.rate}${s.keptUp ? '✓' : '✗'}`).join(', ')}` +
        `${quick ? '; quick: 10 s steps' : ''}; ${o.counts}` +
        (o.steps.some((s) => !s.keptUp)
          ? `; first behind: ${o.steps.find((s) => !s.keptUp)!.why}`
          : '; never fell behind: the ramp ended first'),
    });
  }
  const first = outcomes[0]!;
  const lat = first.latencyStep;
  if (lat) {
    out.push({
      id: 'record-to-receipt',
      what: `Record → receipt p50 at ${lat.rate.toLocaleString('en-US')} records/s, ${BLOCK_MS / 1000} s blocks (${first.kind})`,
      unit: 'ms',
      better: 'lower',
      ours: one(lat.p50),
      baseline: { name: 'block time', ...one(BLOCK_MS) },
      ratio: one(lat.p50 / BLOCK_MS),
      bar: { text: `≤ block time + 300 ms`, met: lat.p50 <= BLOCK_MS + 300 },
      note: `p99 ${fmt(lat.p99)} ms, ack p99 ${fmt(lat.ackP99)} ms${lat.rate !== LATENCY_RATE ? `; not at ${LATENCY_RATE}/s: the ramp stopped at ${lat.rate}` : ''}`,
    });
  }
  for (const [id, gas, at] of [
    ['gas-per-record-low', first.low, first.steps[0]!.rate],
    ['gas-per-record-high', first.high, first.sustainStep?.rate ?? first.steps.at(-1)!.rate],
  ] as const) {
    const perTx = first.high.perTx || first.low.perTx;
    out.push({
      id,
      what: `Gas per record at ${at.toLocaleString('en-US')} records/s (${first.kind})`,
      unit: 'gas',
      better: 'lower',
      ours: one(gas.perRecord),
      baseline: { name: 'one tx per record', ...one(perTx) },
      ratio: one(gas.perRecord / perTx),
      note: `${gas.batches} batches, ${gas.records} records, ${fmt(gas.records / Math.max(1, gas.batches))} records/batch`,
    });
  }
  const mem = outcomes.find((o) => o.kind === 'postgres' && o.memoryMs >= MEMORY_MS) ?? first;
  const ratios = mem.memory.map((m) => m.endMb / m.startMb);
  const worst = Math.max(...ratios);
  out.push({
    id: 'memory',
    what: `Service RSS, end ÷ start of a ${fmt(mem.memoryMs / 1000)} s run at ${mem.memoryRate.toLocaleString('en-US')} records/s (${mem.kind})`,
    unit: '×',
    better: 'lower',
    ours: summarize(ratios),
    bar: { text: 'every service ≤ 1.1×', met: worst <= 1.1 },
    note: mem.memory
      .map(
        (m) => `${m.name} ${fmt(m.startMb)}→${fmt(m.endMb)} MB (${fmt(m.slopeMbPerMin, 1)} MB/min)`,
      )
      .join(', '),
  });
  return out;
}

async function main() {
  say(
    `databases ${DBS.join(', ')}; steps ${STEP_MS / 1000} s; sustain ${SUSTAIN_MS / 1000} s; memory ${MEMORY_MS / 1000} s${quick ? ' (quick)' : ''}`,
  );
  const outcomes: DbOutcome[] = [];
  for (const kind of DBS) outcomes.push(await runDatabase(kind));
  for (const row of rows(outcomes)) reportRow(row);
  say(`done in ${fmt((Date.now() - started) / 1000)} s`);
}

main()
  .catch((error: Error) => {
    console.error(`[pipeline] failed: ${error.stack ?? error.message}`);
    process.exitCode = 1;
  })
  .finally(() => setTimeout(() => process.exit(), 500).unref());
