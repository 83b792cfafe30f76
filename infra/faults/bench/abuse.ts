/**
 * `pnpm bench:abuse`: each attack beside well-behaved clients, against a baseline without it.
 *
 * The whole stack (startStack: anvil, every service its own process, a throwaway Postgres
 * database). Well-behaved clients, each its own process and its own subject: two publishers
 * at RATE records/s (ack latency per record = ack arrival − send time) and a prober that
 * opens a new session every 2 s (setup = POST /v1/sessions → data channel open) and DELETEs
 * it. Rounds alternate: baseline (no attacker), attack, baseline, attack, … ending on a
 * baseline; every attack runs ABUSE_ROUNDS times and is compared with the baseline rounds
 * right before and after each of its rounds (the machine is shared and noisy: side by side
 * in one invocation, never against figures from elsewhere). One attacker process per
 * attack round (bench/peer.ts). Nothing here asserts speed: it prints, and exits 0.
 *
 * Lost records: every recordId a well-behaved publisher got an ack for must be in Postgres
 * `records` at the end (polled until the writer caught up, at most 120 s).
 *
 * Environment: ABUSE_ROUNDS (2), ABUSE_ROUND_MS (15000, the measured window of a round),
 * ABUSE_ATTACKS (deep,wide,flood,grab,slow,nulsub), ABUSE_RATE (150 records/s per publisher),
 * ABUSE_LOG (1: print every service log line), ABUSE_TRACE_DIR (a folder: each round's
 * publisher latencies, in ack order, as JSON files).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type Stack, startStack } from '@streamanchor/stack';
import { createThrowawayPostgres, TEST_REDIS_URL, testRedisPrefix } from '@streamanchor/testing';
import pg from 'pg';

const here = dirname(fileURLToPath(import.meta.url));
const env = process.env;
const ROUNDS = Math.max(1, Number(env.ABUSE_ROUNDS ?? 2));
const ROUND_MS = Math.min(60_000, Math.max(5000, Number(env.ABUSE_ROUND_MS ?? 15_000)));
const RATE = Math.min(1000, Math.max(1, Number(env.ABUSE_RATE ?? 150)));
const ALL_ATTACKS = ['deep', 'wide', 'flood', 'grab', 'slow', 'nulsub'] as const;
type Attack = (typeof ALL_ATTACKS)[number];
const ATTACKS = (env.ABUSE_ATTACKS ?? ALL_ATTACKS.join(','))
  .split(',')
  .map((a) => a.trim())
  .filter((a): a is Attack => (ALL_ATTACKS as readonly string[]).includes(a));
const SESSION_RATE_PER_IP = '1000000';
const WARMUP_MS = 2000;
const ENGAGE_MS = 1500;
const COOLDOWN_MS = 4000;
/**
 * The attacker runs at this niceness: on a real deployment its CPU is its own machine's, here
 * it shares two cores with the stack, so it yields to the services (0 = compete as equals).
 */
const ATTACKER_NICE = Math.min(19, Math.max(0, Number(env.ABUSE_ATTACKER_NICE ?? 10)));

const ATTACK_LABEL: Record<Attack, string> = {
  deep: 'deep nesting (30,000 levels, ~60 KB)',
  wide: 'wide objects (3,000 keys)',
  flood: 'flood (one session, max speed)',
  grab: 'session grab (one token, POST loop)',
  slow: 'slow requests (200 half-sent)',
  nulsub: 'NUL subject token (POST loop)',
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const started = Date.now();
const say = (line: string) =>
  process.stdout.write(`[abuse] +${((Date.now() - started) / 1000).toFixed(0)}s ${line}\n`);

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
/** An HS256 token (what `pnpm run token` mints), any `sub` (even one the gateway refuses). */
function mint(secret: string, sub: string, ttlSeconds = 6 * 3600): string {
  const iat = Math.floor(Date.now() / 1000);
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub, topics: ['demo'], iat, exp: iat + ttlSeconds })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
const sortNum = (values: number[]) => [...values].sort((a, b) => a - b);
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

// -----------------------------------------------------------------------------------------------
// Child processes

interface PeerResult {
  mode: string;
  latencies: number[];
  setups: number[];
  refused: string[];
  sent: number;
  acked: number;
  nacks: Record<string, number>;
  statuses: Record<string, number>;
  disconnects: string[];
  extra: Record<string, number>;
  whole: { sent: number; acked: number; nacked: number; unanswered: number };
}

class Peer {
  result: PeerResult | undefined;
  sessions = 0;
  ready = false;
  readonly logs: string[] = [];
  private waiters: (() => void)[] = [];
  private exited = false;
  private readonly child: ChildProcess;

  constructor(
    readonly name: string,
    peerEnv: Record<string, string>,
    nice = 0,
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', join(here, 'peer.ts')], {
      cwd: join(here, '..'),
      env: { ...process.env, ...peerEnv },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    if (nice && this.child.pid) {
      try {
        setPriority(this.child.pid, nice);
      } catch {}
    }
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.onLine(line));
    createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.logs.push(line);
      if (/error|abort|throw/i.test(line)) say(`[${name}] stderr: ${line.slice(0, 300)}`);
    });
    this.child.once('exit', () => {
      this.exited = true;
      this.wake();
    });
  }

  private wake() {
    for (const wake of this.waiters.splice(0)) wake();
  }

  private onLine(line: string) {
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.logs.push(line);
      return;
    }
    if (event.event === 'ready') this.ready = true;
    else if (event.event === 'session') this.sessions += 1;
    else if (event.event === 'result') this.result = event as unknown as PeerResult;
    else if (event.event === 'error') say(`[${this.name}] error: ${String(event.message)}`);
    else if (event.event === 'log') this.logs.push(String(event.message));
    this.wake();
  }

  async until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (this.exited) return check();
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  send(cmd: string) {
    if (!this.exited) this.child.stdin!.write(`${JSON.stringify({ cmd })}\n`);
  }

  /** Stops it and returns its result (undefined if it gave none within timeoutMs). */
  async stop(timeoutMs: number): Promise<PeerResult | undefined> {
    this.send('stop');
    await this.until(() => this.result !== undefined, timeoutMs);
    await this.close();
    return this.result;
  }

  async close() {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

// -----------------------------------------------------------------------------------------------
// Process figures (/proc): CPU time and open file descriptors of a service

function cpuMs(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, 100 Hz
  } catch {
    return Number.NaN;
  }
}
/** Busy and total jiffies of the whole machine (/proc/stat), for its CPU use over a window. */
function machineJiffies(): { busy: number; total: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - fields[3]! - fields[4]!, total };
  } catch {
    return { busy: Number.NaN, total: Number.NaN };
  }
}
function fdCount(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

// -----------------------------------------------------------------------------------------------
// Rounds

interface RoundResult {
  index: number;
  kind: 'baseline' | Attack;
  latencies: number[];
  setups: number[];
  refused: string[];
  wbSent: number;
  wbAcked: number;
  wbNacks: Record<string, number>;
  wbUnanswered: number;
  wbDisconnects: string[];
  ackedIds: string[];
  attacker: PeerResult | undefined;
  relayCpuPct: number;
  gatewayCpuPct: number;
  attackerCpuPct: number;
  /** CPU of every service process over the measured window (% of one core). */
  serviceCpuPct: Record<string, number>;
  /** Busy share of all cores together. */
  machineBusyPct: number;
  gatewayFdMax: number;
  gatewayFdBefore: number;
  logWarn: number;
  logError: number;
  logSamples: string[];
}

const logCounter = { warn: 0, error: 0, samples: [] as string[] };

async function runRound(
  stack: Stack,
  tmp: string,
  index: number,
  kind: 'baseline' | Attack,
  tokens: Record<string, string>,
): Promise<RoundResult> {
  const api = stack.urls.api;
  const ackedFiles = [join(tmp, `r${index}-wb1.txt`), join(tmp, `r${index}-wb2.txt`)];
  const publishers = ['wb-1', 'wb-2'].map(
    (sub, i) =>
      new Peer(`${sub}`, {
        MODE: 'publish',
        API: api,
        TOKEN: tokens[sub]!,
        RATE: String(RATE),
        ID_PREFIX: `r${index}-${sub}-`,
        ACKED_FILE: ackedFiles[i]!,
      }),
  );
  const prober = new Peer('wb-probe', {
    MODE: 'probe',
    API: api,
    TOKEN: tokens['wb-probe']!,
    PROBE_MS: '2000',
  });
  const wellBehaved = [...publishers, prober];
  for (const peer of publishers) await peer.until(() => peer.sessions > 0, 30_000);
  await sleep(WARMUP_MS);

  let attacker: Peer | undefined;
  if (kind !== 'baseline') {
    attacker = new Peer(
      `attacker-${kind}`,
      {
        MODE: kind,
        API: api,
        // Each attack round its own subject: a relay that closes an abusive session suspends
        // its subject (ABUSIVE_SUBJECT_SUSPEND_MS), and a suspension left over from an earlier
        // round would make a later attack look weaker than it is.
        TOKEN:
          kind === 'nulsub'
            ? tokens.nul!
            : kind === 'slow'
              ? tokens.slow!
              : mint(stack.jwtSecret, `attacker-${kind}-${index}`),
        ID_PREFIX: 'a',
        CONCURRENCY: '4',
        SLOW_SOCKETS: '200',
      },
      ATTACKER_NICE,
    );
    await attacker.until(() => attacker!.ready, 15_000);
    await sleep(ENGAGE_MS);
  }

  const relay = stack.services.find((s) => s.name === 'rtc-relay')?.child.pid;
  const gateway = stack.services.find((s) => s.name === 'signaling-gateway')?.child.pid;
  const gatewayFdBefore = fdCount(gateway);
  let gatewayFdMax = gatewayFdBefore;
  const fdTimer = setInterval(() => {
    gatewayFdMax = Math.max(gatewayFdMax, fdCount(gateway) || 0);
  }, 500);
  const servicePids = stack.services.map((s) => [s.name, s.child.pid] as const);
  const services0 = servicePids.map(([, pid]) => cpuMs(pid));
  const cpu0 = {
    relay: cpuMs(relay),
    gateway: cpuMs(gateway),
    attacker: cpuMs(attacker?.pid),
    machine: machineJiffies(),
    at: Date.now(),
  };
  const logs0 = { warn: logCounter.warn, error: logCounter.error, n: logCounter.samples.length };
  for (const peer of wellBehaved) peer.send('measure');
  await sleep(ROUND_MS);
  const elapsed = Date.now() - cpu0.at;
  const relayCpuPct = ((cpuMs(relay) - cpu0.relay) / elapsed) * 100;
  const gatewayCpuPct = ((cpuMs(gateway) - cpu0.gateway) / elapsed) * 100;
  const serviceCpuPct = Object.fromEntries(
    servicePids.map(([name, pid], i) => [name, ((cpuMs(pid) - services0[i]!) / elapsed) * 100]),
  );
  const attackerCpuPct = attacker ? ((cpuMs(attacker.pid) - cpu0.attacker) / elapsed) * 100 : 0;
  const machine1 = machineJiffies();
  const machineBusyPct =
    ((machine1.busy - cpu0.machine.busy) / (machine1.total - cpu0.machine.total)) * 100;
  const logs1 = { warn: logCounter.warn, error: logCounter.error };

  // Well-behaved clients stop first (their last answers arrive under attack), then the attacker.
  const results = await Promise.all(wellBehaved.map((peer) => peer.stop(40_000)));
  const attackerResult = attacker ? await attacker.stop(30_000) : undefined;
  clearInterval(fdTimer);

  const latencies: number[] = [];
  const setups: number[] = [];
  const refused: string[] = [];
  const wbNacks: Record<string, number> = {};
  const wbDisconnects: string[] = [];
  let wbSent = 0;
  let wbAcked = 0;
  let wbUnanswered = 0;
  results.forEach((result, i) => {
    const peer = wellBehaved[i]!;
    if (!result) {
      refused.push(`${peer.name}: no result (process hung or crashed)`);
      return;
    }
    latencies.push(...result.latencies);
    // Latencies in ack order (≈ time order, at RATE per second), to see when an attack hurts.
    if (env.ABUSE_TRACE_DIR && result.mode === 'publish')
      writeFileSync(
        join(env.ABUSE_TRACE_DIR, `r${index}-${kind}-${peer.name}.json`),
        JSON.stringify(result.latencies),
      );
    setups.push(...result.setups);
    refused.push(...result.refused.map((r) => `${peer.name}: ${r}`));
    wbDisconnects.push(...result.disconnects.map((d) => `${peer.name}: ${d}`));
    for (const [code, n] of Object.entries(result.nacks)) wbNacks[code] = (wbNacks[code] ?? 0) + n;
    if (result.mode === 'publish') {
      // Over the publisher's whole life (its warm-up included), so sent = acked + nacked + unanswered.
      wbSent += result.whole.sent;
      wbAcked += result.whole.acked;
      wbUnanswered += result.whole.unanswered;
    }
  });
  const ackedIds: string[] = [];
  for (const file of ackedFiles)
    if (existsSync(file))
      ackedIds.push(
        ...readFileSync(file, 'utf8')
          .split('\n')
          .filter((line) => line.length > 0),
      );

  await sleep(COOLDOWN_MS);
  return {
    index,
    kind,
    latencies,
    setups,
    refused,
    wbSent,
    wbAcked,
    wbNacks,
    wbUnanswered,
    wbDisconnects,
    ackedIds,
    attacker: attackerResult,
    relayCpuPct,
    gatewayCpuPct,
    attackerCpuPct,
    machineBusyPct,
    serviceCpuPct,
    gatewayFdMax,
    gatewayFdBefore,
    logWarn: logs1.warn - logs0.warn,
    logError: logs1.error - logs0.error,
    logSamples: logCounter.samples.slice(logs0.n, logs0.n + 6),
  };
}

function attackerOutcome(result: PeerResult | undefined): string {
  if (!result) return 'no result';
  const parts: string[] = [];
  const table = { ...result.nacks };
  if (result.acked) table.ack = result.acked;
  for (const [code, n] of Object.entries(table).sort((a, b) => b[1] - a[1]))
    parts.push(`${code} ${n}`);
  for (const [status, n] of Object.entries(result.statuses).sort((a, b) => b[1] - a[1]))
    parts.push(`${status.trim()}: ${n}`);
  const extra = result.extra;
  if (result.mode === 'slow') {
    const held = (kind: string) =>
      extra[`${kind}HeldMsMin`] === undefined
        ? `${kind}: none closed`
        : `${kind} closed after ${fmt(extra[`${kind}HeldMsMin`]! / 1000)}–${fmt(extra[`${kind}HeldMsMax`]! / 1000)} s${
            extra[`${kind}HeldMsMedian`] === undefined
              ? ''
              : ` (median ${fmt(extra[`${kind}HeldMsMedian`]! / 1000)})`
          }`;
    parts.push(
      `max open ${extra.maxOpen ?? 0}, closed by gateway ${extra['closed by server'] ?? 0}: ${held('headers')}, ${held('body')}; ` +
        `open at stop ${extra.openAtStop ?? 0} (oldest ${fmt((extra.oldestOpenMs ?? 0) / 1000)} s)`,
    );
  }
  if (extra.stalls) parts.push(`stalls ${extra.stalls}`);
  if (extra.sessions) parts.push(`sessions ${extra.sessions}`);
  if (result.disconnects.length) parts.push(`disconnects ${result.disconnects.length}`);
  return `${result.sent} sent; ${parts.join(', ') || '-'}`;
}

function describeRound(round: RoundResult): string {
  const lat = sortNum(round.latencies);
  const setups = sortNum(round.setups);
  const nacks = Object.entries(round.wbNacks)
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  return (
    `round ${round.index} ${round.kind}: well-behaved sent ${round.wbSent}, acked ${round.wbAcked}` +
    `${nacks ? `, nacks ${nacks}` : ''}, unanswered ${round.wbUnanswered}; ack p50 ${fmt(percentile(lat, 50))} ms` +
    ` p99 ${fmt(percentile(lat, 99))} ms max ${fmt(lat[lat.length - 1] ?? Number.NaN)} ms; setup p50 ${fmt(percentile(setups, 50))} ms` +
    ` max ${fmt(setups[setups.length - 1] ?? Number.NaN)} ms (n ${setups.length}); refused ${round.refused.length}; relay CPU ${fmt(round.relayCpuPct, 0)} %,` +
    ` gateway CPU ${fmt(round.gatewayCpuPct, 0)} %, writer CPU ${fmt(round.serviceCpuPct['chain-writer'] ?? Number.NaN, 0)} %,` +
    ` indexer CPU ${fmt(round.serviceCpuPct['chain-indexer'] ?? Number.NaN, 0)} %, attacker CPU ${fmt(round.attackerCpuPct, 0)} %,` +
    ` machine busy ${fmt(round.machineBusyPct, 0)} % of all cores, gateway fds ${round.gatewayFdBefore}→max ${round.gatewayFdMax};` +
    ` service WARN ${round.logWarn} ERROR ${round.logError}` +
    (round.attacker || round.kind !== 'baseline'
      ? `; attacker: ${attackerOutcome(round.attacker)}`
      : '')
  );
}

// -----------------------------------------------------------------------------------------------

async function main() {
  if (ATTACKS.length === 0) throw new Error(`ABUSE_ATTACKS names none of ${ALL_ATTACKS.join(',')}`);
  const tmp = mkdtempSync(join(tmpdir(), 'sa-abuse-'));
  const postgres = await createThrowawayPostgres('abuse');
  const serviceLines: string[] = [];
  const output = (line: string) => {
    const m = /^\[([\w-]+)\] (WARN|ERROR|FATAL)\b/.exec(line);
    if (m) {
      if (m[2] === 'WARN') logCounter.warn += 1;
      else logCounter.error += 1;
      if (logCounter.samples.length < 5000) logCounter.samples.push(line.slice(0, 400));
    }
    serviceLines.push(line);
    if (serviceLines.length > 50_000) serviceLines.splice(0, 10_000);
    if (env.ABUSE_LOG === '1' || /^\[stack\]/.test(line) || /FATAL|exited/.test(line))
      process.stdout.write(`${line}\n`);
  };
  let stack: Stack | undefined;
  let pool: pg.Pool | undefined;
  try {
    stack = await startStack({
      env: {
        ...process.env,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: testRedisPrefix('abuse'),
        DATA_DIR: join(tmp, 'data'),
        DATABASE_URL: postgres.url,
        HOST: '127.0.0.1',
        PORT: '0',
        ANVIL_PORT: '0',
        ANVIL_BLOCK_TIME: '1',
        JWT_SECRET: undefined,
        ICE_UDP_PORT: undefined,
        LOG_LEVEL: 'info',
        // Every client of the benchmark comes from 127.0.0.1, so the per-address limit would
        // count the well-behaved clients and the attacker together: raised out of the way
        // (the gateway's own tests exercise it). Every other limit keeps its default.
        SESSION_RATE_PER_IP,
      },
      output,
      clearRedisOnStop: true,
    });
    void stack.failed.then(({ service, code, signal }) =>
      say(`${service} exited unexpectedly (${signal ?? `exit ${code}`})`),
    );
    pool = new pg.Pool({ connectionString: postgres.url, max: 2 });
    pool.on('error', () => {});

    const tokens: Record<string, string> = {
      'wb-1': mint(stack.jwtSecret, 'wb-1'),
      'wb-2': mint(stack.jwtSecret, 'wb-2'),
      'wb-probe': mint(stack.jwtSecret, 'wb-probe'),
      nul: mint(stack.jwtSecret, 'evil\u0000tenant'),
      // Its own subject, so the grab rounds' per-subject budget does not answer it early.
      slow: mint(stack.jwtSecret, 'slowloris'),
    };
    const plan: ('baseline' | Attack)[] = [];
    for (let r = 0; r < ROUNDS; r++) for (const attack of ATTACKS) plan.push('baseline', attack);
    plan.push('baseline');
    const perRound = ROUND_MS + WARMUP_MS + ENGAGE_MS + COOLDOWN_MS + 6000;
    say(
      `${plan.length} rounds (${ROUNDS}× each of ${ATTACKS.join(', ')}, baselines between), ` +
        `${ROUND_MS / 1000} s measured each, ~${Math.round((plan.length * perRound) / 60_000)} min; ` +
        `well-behaved: 2 publishers × ${RATE} records/s + 1 prober (a session every 2 s); ` +
        `SESSION_RATE_PER_IP=${SESSION_RATE_PER_IP} (all clients share 127.0.0.1), other limits default`,
    );
    const rounds: RoundResult[] = [];
    for (const [i, kind] of plan.entries()) {
      const round = await runRound(stack, tmp, i, kind, tokens);
      rounds.push(round);
      say(describeRound(round));
    }

    // Lost records: acked to a well-behaved publisher, not in `records`.
    const allAcked = rounds.flatMap((r) => r.ackedIds);
    say(
      `checking that the ${allAcked.length} records acked to well-behaved publishers are stored…`,
    );
    const storedSet = new Set<string>();
    const deadline = Date.now() + 120_000;
    for (;;) {
      const missing = allAcked.filter((id) => !storedSet.has(id));
      for (let i = 0; i < missing.length; i += 5000) {
        const { rows } = await pool.query<{ id: string }>(
          'select lower(record_id) as id from records where lower(record_id) = any($1::text[])',
          [missing.slice(i, i + 5000)],
        );
        for (const row of rows) storedSet.add(row.id);
      }
      if (storedSet.size >= new Set(allAcked).size || Date.now() > deadline) break;
      await sleep(2000);
    }
    const { rows: dead } = await pool
      .query<{ n: number }>('select count(*)::int as n from dead_letters')
      .catch(() => ({ rows: [{ n: -1 }] }));
    const lostOf = (round: RoundResult) => round.ackedIds.filter((id) => !storedSet.has(id)).length;

    // The table.
    const rowsOut: string[][] = [];
    const header = [
      'attack',
      'base p50',
      'base p99',
      'atk p50',
      'atk p99',
      'p99 ratio',
      'within 2×',
      'setup p50 base/atk',
      'refused',
      'lost',
      'wb nacks',
      'attacker outcome (all its rounds)',
    ];
    const verdicts: { attack: Attack; p99ok: boolean; refused: number; lost: number }[] = [];
    for (const attack of ATTACKS) {
      const attackRounds = rounds.filter((r) => r.kind === attack);
      const baselineRounds = rounds.filter(
        (r) => r.kind === 'baseline' && attackRounds.some((a) => Math.abs(a.index - r.index) === 1),
      );
      const base = sortNum(baselineRounds.flatMap((r) => r.latencies));
      const atk = sortNum(attackRounds.flatMap((r) => r.latencies));
      const baseSetup = sortNum(baselineRounds.flatMap((r) => r.setups));
      const atkSetup = sortNum(attackRounds.flatMap((r) => r.setups));
      const ratio = percentile(atk, 99) / percentile(base, 99);
      const refused = attackRounds.reduce((n, r) => n + r.refused.length, 0);
      const lost = attackRounds.reduce((n, r) => n + lostOf(r), 0);
      const nacks: Record<string, number> = {};
      for (const r of attackRounds)
        for (const [c, n] of Object.entries(r.wbNacks)) nacks[c] = (nacks[c] ?? 0) + n;
      const merged = attackRounds.every((r) => r.attacker)
        ? mergeResults(attackRounds.map((r) => r.attacker!))
        : undefined;
      const p99ok = ratio <= 2;
      verdicts.push({ attack, p99ok, refused, lost });
      rowsOut.push([
        ATTACK_LABEL[attack],
        fmt(percentile(base, 50)),
        fmt(percentile(base, 99)),
        fmt(percentile(atk, 50)),
        fmt(percentile(atk, 99)),
        `${fmt(ratio, 2)}×`,
        p99ok ? 'yes' : 'no',
        `${fmt(percentile(baseSetup, 50), 0)}/${fmt(percentile(atkSetup, 50), 0)}`,
        String(refused),
        String(lost),
        Object.entries(nacks)
          .map(([c, n]) => `${c} ${n}`)
          .join(', ') || '0',
        attackerOutcome(merged),
      ]);
    }
    const widths = header.map((h, i) => Math.max(h.length, ...rowsOut.map((r) => r[i]!.length)));
    const line = (cells: string[]) =>
      `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
    const baselineLost = rounds
      .filter((r) => r.kind === 'baseline')
      .reduce((n, r) => n + lostOf(r), 0);
    const baselineRefused = rounds
      .filter((r) => r.kind === 'baseline')
      .reduce((n, r) => n + r.refused.length, 0);
    console.log('');
    console.log(
      `Abuse benchmark, ${new Date().toISOString()}: ${ROUNDS} attack rounds per attack, ${ROUND_MS / 1000} s measured each, ` +
        `baselines = the rounds right before and after; well-behaved = 2 publishers × ${RATE}/s + 1 prober; ack latencies in ms ` +
        `(ack arrival − send), setup = POST /v1/sessions → channel open (ms). SESSION_RATE_PER_IP=${SESSION_RATE_PER_IP} ` +
        `for the benchmark (every client is 127.0.0.1); all other limits at their defaults.`,
    );
    console.log(line(header));
    console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    for (const row of rowsOut) console.log(line(row));
    console.log('');
    console.log(
      `Baseline rounds: refused ${baselineRefused}, lost ${baselineLost}. Acked to well-behaved publishers: ${allAcked.length}, ` +
        `stored ${allAcked.filter((id) => storedSet.has(id)).length}. dead_letters rows: ${dead[0]?.n}.`,
    );
    for (const v of verdicts) {
      const bar = v.p99ok && v.refused === 0 && v.lost === 0;
      console.log(
        `verdict ${v.attack}: ${bar ? 'PASS' : 'FAIL'} (p99 within 2×: ${v.p99ok ? 'yes' : 'no'}, refused ${v.refused}, lost ${v.lost})`,
      );
    }
    const refusedLines = rounds.flatMap((r) =>
      r.refused.map((x) => `round ${r.index} ${r.kind}: ${x}`),
    );
    if (refusedLines.length)
      console.log(`Refused sessions:\n  ${refusedLines.slice(0, 20).join('\n  ')}`);
    const disc = rounds.flatMap((r) =>
      r.wbDisconnects.map((x) => `round ${r.index} ${r.kind}: ${x}`),
    );
    if (disc.length)
      console.log(`Well-behaved sessions ended early:\n  ${disc.slice(0, 20).join('\n  ')}`);
    const samples = rounds
      .filter((r) => r.logSamples.length)
      .map(
        (r) =>
          `round ${r.index} ${r.kind} (WARN ${r.logWarn}, ERROR ${r.logError}):\n    ${r.logSamples.join('\n    ')}`,
      );
    if (samples.length)
      console.log(`Service warnings (first lines per round):\n  ${samples.join('\n  ')}`);
  } finally {
    await pool?.end().catch(() => {});
    await stack?.stop().catch((error: Error) => say(`stop: ${error.message}`));
    await postgres.drop().catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** One attacker's results over several rounds, added up. */
function mergeResults(results: PeerResult[]): PeerResult {
  const out: PeerResult = { ...results[0]!, disconnects: [...results[0]!.disconnects] };
  for (const b of results.slice(1)) {
    out.sent += b.sent;
    out.acked += b.acked;
    out.nacks = sumTables(out.nacks, b.nacks);
    out.statuses = sumTables(out.statuses, b.statuses);
    out.disconnects.push(...b.disconnects);
    out.extra = mergeExtra(out.extra, b.extra);
  }
  return out;
}

function sumTables(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}
function mergeExtra(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = sumTables(a, b);
  for (const key of ['maxOpen', 'bodyHeldMsMax', 'headersHeldMsMax', 'oldestOpenMs'])
    out[key] = Math.max(a[key] ?? 0, b[key] ?? 0);
  for (const key of ['bodyHeldMsMin', 'headersHeldMsMin'])
    if (a[key] !== undefined || b[key] !== undefined)
      out[key] = Math.min(a[key] ?? Number.POSITIVE_INFINITY, b[key] ?? Number.POSITIVE_INFINITY);
  // A median of medians is no median: the merged line gives the range only.
  delete out.bodyHeldMsMedian;
  delete out.headersHeldMsMedian;
  return out;
}

main()
  .catch((error: Error) => {
    console.error(`[abuse] failed: ${error.stack ?? error.message}`);
  })
  .finally(() => {
    // A benchmark: exit 0 regardless; the verdicts above say how it went.
    setTimeout(() => process.exit(0), 500).unref();
  });
