/**
 * Session setup benchmark (issue 7): sessions/s and setup latency at concurrency 10 and 50.
 *
 * Ours: the signaling gateway and the rtc-relay, each its own process as in production (run
 * from their sources with tsx, on Redis at REDIS_URL under a throwaway prefix; no chain: the
 * session path never touches it). One session = POST /v1/sessions (SDP offer, Bearer token)
 * → rate limits, token check, RESERVE_SESSION, relay pick, createSession over BullMQ → the
 * relay's PeerConnection answers → 201 with the SDP answer → ICE, DTLS, SCTP → the relay's
 * `hello` on the data channel → DELETE /v1/sessions/:id (204) → the client closes its peer.
 * Every check runs: SESSION_RATE_PER_IP and SESSION_RATE_PER_SUBJECT are set high (every
 * client is 127.0.0.1), so they count but never refuse; each loop has its own subject, so
 * MAX_SESSIONS_PER_SUBJECT (default 20) is never reached either.
 *
 * Baseline: a bare node-datachannel answerer over plain HTTP in one process (no gateway, no
 * BullMQ, no Redis, no auth): POST an offer, answer once gathering completes, `hello` when the
 * channel opens, DELETE closes the peer. What node-datachannel alone costs per connection on
 * this machine. Same clients, same concurrency, rounds alternated (`alternate`).
 *
 * Clients: CLIENT_PROCESSES processes (node-datachannel offerers; their CPU is never the
 * relay's process), the loops of a run spread across them; each loop opens a session, waits
 * for `hello`, DELETEs it and starts over. Setup = POST sent → `hello` received (the offer is
 * gathered before); sessions/s = sessions whose `hello` arrived within the measured window
 * (after a warm-up) / window. Also reported: POST → 201 (p50).
 *
 * Trickle ICE (docs/protocol.md §3.1.2): at each concurrency, ours again with the offer POSTed
 * as soon as it exists and the candidates PATCHed once gathered (with a=end-of-candidates),
 * against ours without, timed from the peer connection's creation to hello (gathering
 * included, which is what trickle takes off the critical path).
 *
 *   npx tsx infra/bench/src/sessions.ts [--quick] [--rounds N] [--ms WINDOW_MS]
 *     [--concurrency 10,50] [--cpu-prof DIR] [--log]
 *   (or: pnpm bench --only sessions)
 *
 * --quick: 2 rounds of 2 s windows (< 40 s in all). --cpu-prof DIR: the gateway and the
 * relay run with --cpu-prof and write their profiles to DIR when they stop. --log: print the
 * services' log lines (LOG_LEVEL=warn). Env: REDIS_URL (default 127.0.0.1:6379).
 *
 * Exits non-zero only when broken: a service did not start, or any session failed (a refused
 * POST, no hello within 10 s, a DELETE that was not 204). Nothing is asserted on speed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DATA_CHANNEL_LABEL, PROTOCOL_VERSION } from '@streamanchor/protocol';
import {
  alternate,
  type BenchRow,
  benchOption,
  compareRow,
  deleteRedisPrefix,
  getFreePort,
  isQuick,
  percentile,
  reportRow,
  summarize,
  TEST_REDIS_URL,
  testRedisPrefix,
} from '@streamanchor/testing';
import nodeDataChannel, { type DataChannel, type PeerConnection } from 'node-datachannel';

const SELF = fileURLToPath(import.meta.url);
const REPO_ROOT = resolve(dirname(SELF), '../../..');
const ROLE = process.env.SESSIONS_BENCH_ROLE ?? 'main';
const CLIENT_PROCESSES = 5;
const HELLO_TIMEOUT_MS = 10_000;

const now = () => performance.now();
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const emit = (event: object) => process.stdout.write(`${JSON.stringify(event)}\n`);

// ---------------------------------------------------------------------------------------------
// Client process: node-datachannel offerers, one loop per unit of concurrency.

interface RunCommand {
  cmd: 'run';
  api: string;
  /** One bearer token per loop (empty for the baseline). */
  tokens: string[];
  warmupMs: number;
  windowMs: number;
  /** POST the offer at once and PATCH the candidates (docs/protocol.md §3.1.2). */
  trickle?: boolean;
}

interface RunResult {
  event: 'result';
  /** Sessions whose hello arrived within the window. */
  counted: number;
  /** Sessions completed in the whole run (warm-up and tail too). */
  sessions: number;
  /** POST sent → hello received, ms, of the counted sessions. */
  setups: number[];
  /** POST sent → 201 read, ms, of the counted sessions. */
  posts: number[];
  /** Peer connection created → hello received (gathering included), ms, of the counted sessions. */
  connects: number[];
  failures: string[];
}

/** One session: offer, POST, answer, hello, DELETE. Returns its figures or throws. */
async function oneSession(
  api: string,
  token: string,
  trickle = false,
): Promise<{ post: number; setup: number; connect: number; helloAt: number }> {
  const created = now();
  const pc: PeerConnection = new nodeDataChannel.PeerConnection('bench-client', {
    iceServers: [],
    bindAddress: '127.0.0.1',
  });
  let dc: DataChannel | undefined;
  try {
    // Callbacks before the channel: node-datachannel drops events fired before registration.
    const candidates: string[] = [];
    pc.onLocalCandidate((candidate) => candidates.push(candidate.replace(/^a=/, '')));
    const gathered = new Promise<string>((done, fail) => {
      const timer = setTimeout(() => fail(new Error('offer: gathering took over 5 s')), 5000);
      pc.onGatheringStateChange((state) => {
        if (state !== 'complete') return;
        clearTimeout(timer);
        done(pc.localDescription()?.sdp ?? '');
      });
    });
    // With trickle the offer leaves as soon as it exists, with the candidates it has then.
    const offer = trickle
      ? new Promise<string>((done) => pc.onLocalDescription((sdp) => done(sdp)))
      : gathered;
    let helloAt = 0;
    let onHello: () => void = () => {};
    const hello = new Promise<void>((done) => {
      onHello = done;
    });
    const channel = pc.createDataChannel(DATA_CHANNEL_LABEL, { protocol: PROTOCOL_VERSION });
    dc = channel;
    channel.onMessage((message) => {
      if (helloAt || typeof message !== 'string' || !message.includes('"hello"')) return;
      if ((JSON.parse(message) as { type?: string }).type !== 'hello') return;
      helloAt = now();
      onHello();
    });
    const sdp = await offer;
    const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const started = now();
    const response = await fetch(`${api}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', ...auth },
      body: sdp,
      signal: AbortSignal.timeout(HELLO_TIMEOUT_MS),
    });
    const answer = await response.text();
    const answered = now();
    if (response.status !== 201)
      throw new Error(`POST ${response.status} ${answer.slice(0, 160).replace(/\s+/g, ' ')}`);
    const location = response.headers.get('location');
    if (!location) throw new Error('POST 201 without Location');
    const response201Etag = response.headers.get('etag');
    pc.setRemoteDescription(answer, 'answer');
    // Trickle: the candidates the offer lacked, and the end, in one PATCH once gathered
    // (loopback host candidates come within a millisecond or two).
    const patched = trickle
      ? gathered.then(async () => {
          const ice = sdp
            .split(/\r?\n/)
            .filter((line) => /^a=(ice-ufrag|ice-pwd|mid):/.test(line) || line.startsWith('m='));
          const fresh = candidates.filter((c) => !sdp.includes(c));
          const response = await fetch(new URL(location, api), {
            method: 'PATCH',
            headers: {
              'content-type': 'application/trickle-ice-sdpfrag',
              'if-match': response201Etag ?? '*',
              ...auth,
            },
            body: `${[...ice, ...fresh.map((c) => `a=${c}`), 'a=end-of-candidates'].join('\r\n')}\r\n`,
            signal: AbortSignal.timeout(HELLO_TIMEOUT_MS),
          });
          await response.arrayBuffer();
          if (response.status !== 204) throw new Error(`PATCH ${response.status}`);
        })
      : Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      hello,
      new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new Error('no hello within 10 s of the answer')), 10_000);
      }),
    ]).finally(() => clearTimeout(timer));
    await patched;
    const closed = await fetch(new URL(location, api), {
      method: 'DELETE',
      headers: auth,
      signal: AbortSignal.timeout(HELLO_TIMEOUT_MS),
    });
    await closed.arrayBuffer();
    if (closed.status !== 204) throw new Error(`DELETE ${closed.status}`);
    return {
      post: answered - started,
      setup: helloAt - started,
      connect: helloAt - created,
      helloAt,
    };
  } finally {
    try {
      dc?.close();
    } catch {}
    try {
      pc.close();
    } catch {}
  }
}

async function runLoops(command: RunCommand): Promise<RunResult> {
  const result: RunResult = {
    event: 'result',
    counted: 0,
    sessions: 0,
    setups: [],
    posts: [],
    connects: [],
    failures: [],
  };
  const from = now() + command.warmupMs;
  const until = from + command.windowMs;
  const loop = async (token: string) => {
    while (now() < until) {
      try {
        const session = await oneSession(command.api, token, command.trickle);
        result.sessions += 1;
        if (session.helloAt >= from && session.helloAt < until) {
          result.counted += 1;
          result.setups.push(session.setup);
          result.posts.push(session.post);
          result.connects.push(session.connect);
        }
      } catch (error) {
        result.failures.push((error as Error).message);
        await sleep(100);
      }
    }
  };
  await Promise.all(command.tokens.map(loop));
  return result;
}

function clientMain(): void {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = JSON.parse(line) as RunCommand | { cmd: 'stop' };
    if (command.cmd === 'stop') {
      nodeDataChannel.cleanup();
      process.exit(0);
    }
    void runLoops(command).then(emit);
  });
  lines.on('close', () => process.exit(0));
  emit({ event: 'ready' });
}

// ---------------------------------------------------------------------------------------------
// Baseline process: a bare node-datachannel answerer over plain HTTP.

function baselineMain(): void {
  const peers = new Map<string, PeerConnection>();
  const reply = (res: ServerResponse, status: number, body = '', headers = {}) => {
    res.writeHead(status, headers);
    res.end(body);
  };
  const answer = async (req: IncomingMessage, res: ServerResponse) => {
    let offer = '';
    for await (const chunk of req) offer += chunk;
    const id = randomBytes(16).toString('base64url');
    const pc = new nodeDataChannel.PeerConnection(`b-${id}`, {
      iceServers: [],
      bindAddress: '127.0.0.1',
    });
    peers.set(id, pc);
    const gathered = new Promise<void>((done) => {
      pc.onGatheringStateChange((state) => {
        if (state === 'complete') done();
      });
    });
    pc.onDataChannel((channel) => {
      const hello = () => channel.sendMessage(JSON.stringify({ type: 'hello', sessionId: id }));
      if (channel.isOpen()) hello();
      else channel.onOpen(hello);
    });
    // As the relay does (ICE_USE_OFFER_CANDIDATES=false): the offer's candidates are dropped and
    // the client's address is learnt from its own checks, so no DTLS hello reaches a client
    // that has not read its answer yet (one lost hello costs a 1 s retransmission).
    pc.setRemoteDescription(
      offer
        .split(/(?<=\n)/)
        .filter(
          (line) => !line.startsWith('a=candidate:') && !line.startsWith('a=end-of-candidates'),
        )
        .join(''),
      'offer',
    );
    await gathered;
    reply(res, 201, pc.localDescription()?.sdp ?? '', {
      'content-type': 'application/sdp',
      location: `/v1/sessions/${id}`,
    });
  };
  const server = createServer((req, res) => {
    const url = req.url ?? '';
    if (req.method === 'POST' && url === '/v1/sessions') {
      answer(req, res).catch((error: Error) => reply(res, 500, error.message));
    } else if (req.method === 'DELETE' && url.startsWith('/v1/sessions/')) {
      const id = url.slice('/v1/sessions/'.length);
      const pc = peers.get(id);
      peers.delete(id);
      if (!pc) return reply(res, 404);
      reply(res, 204);
      // As the relay does: the peer closes after the reply, not before it.
      setTimeout(() => pc.close(), 250);
    } else reply(res, 404);
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    emit({ event: 'listening', url: `http://127.0.0.1:${port}` });
  });
  process.on('SIGTERM', () => {
    for (const pc of peers.values()) pc.close();
    server.close();
    nodeDataChannel.cleanup();
    process.exit(0);
  });
}

// ---------------------------------------------------------------------------------------------
// Main: services, clients, alternated rounds, rows.

const option = (name: string) => benchOption(name);

/** An HS256 token as `pnpm run token` mints it. */
function mint(secret: string, sub: string): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const iat = Math.floor(Date.now() / 1000);
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, topics: ['demo'], iat, exp: iat + 3600 })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

interface Child {
  name: string;
  process: ChildProcess;
  /** Every JSON event line it printed, in order, for `next`. */
  next(event: string, timeoutMs: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

function startChild(
  name: string,
  args: string[],
  env: Record<string, string | undefined>,
  showLog: boolean,
): Child {
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    // No ops server (/metrics): the services share this host, and its default port.
    env: { ...process.env, OPS_PORT: '0', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const queued: Record<string, unknown>[] = [];
  const waiters: { event: string; done: (value: Record<string, unknown>) => void }[] = [];
  const tail: string[] = [];
  let exited = false;
  const deliver = (value: Record<string, unknown>) => {
    const at = waiters.findIndex((w) => w.event === value.event);
    if (at >= 0) waiters.splice(at, 1)[0]!.done(value);
    else queued.push(value);
  };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let value: Record<string, unknown> | undefined;
    try {
      value = JSON.parse(line) as Record<string, unknown>;
    } catch {}
    if (value && typeof value.event === 'string') deliver(value);
    else {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      if (showLog || /"level":(50|60)/.test(line)) console.log(`[${name}] ${line.slice(0, 400)}`);
    }
  });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
    if (showLog) console.log(`[${name}] ${line.slice(0, 400)}`);
  });
  const exit = new Promise<void>((done) => child.once('exit', () => done()));
  void exit.then(() => {
    exited = true;
    for (const waiter of waiters.splice(0)) waiter.done({ event: 'exit' });
  });
  return {
    name,
    process: child,
    next(event, timeoutMs) {
      const at = queued.findIndex((value) => value.event === event);
      if (at >= 0) return Promise.resolve(queued.splice(at, 1)[0]!);
      if (exited) return Promise.reject(new Error(`${name} exited:\n${tail.join('\n')}`));
      return new Promise((done, fail) => {
        const timer = setTimeout(
          () => fail(new Error(`${name}: no ${event} within ${timeoutMs} ms:\n${tail.join('\n')}`)),
          timeoutMs,
        );
        waiters.push({
          event,
          done: (value) => {
            clearTimeout(timer);
            if (value.event === 'exit') fail(new Error(`${name} exited:\n${tail.join('\n')}`));
            else done(value);
          },
        });
      });
    },
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** CPU time (user + system, ms) a process has used so far; 0 where /proc is missing. */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

async function waitForHttp(url: string, timeoutMs: number, children: Child[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const child of children)
      if (child.process.exitCode !== null) throw new Error(`${child.name} exited during start-up`);
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${url} not ready within ${timeoutMs} ms`);
    await sleep(200);
  }
}

async function main(): Promise<void> {
  const quick = isQuick();
  const rounds = Number(option('--rounds') ?? (quick ? 2 : 5));
  const windowMs = Number(option('--ms') ?? (quick ? 2000 : 6000));
  const warmupMs = quick ? 500 : 1000;
  const concurrencies = (option('--concurrency') ?? '10,50').split(',').map(Number);
  const profileDir = option('--cpu-prof');
  const showLog = process.argv.includes('--log');
  const redisUrl = process.env.REDIS_URL ?? TEST_REDIS_URL;
  const prefix = testRedisPrefix('bench-sessions');
  const jwtSecret = randomBytes(32).toString('base64url');
  const gatewayPort = await getFreePort();
  const api = `http://127.0.0.1:${gatewayPort}`;
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${resolve(profileDir)}`] : [];
  const tsx = ['--import', 'tsx'];
  const common = { REDIS_URL: redisUrl, REDIS_PREFIX: prefix, LOG_LEVEL: 'warn' };

  const children: Child[] = [];
  const stopAll = async () => {
    await Promise.all(children.map((child) => child.stop()));
    await deleteRedisPrefix(prefix, redisUrl).catch(() => {});
  };
  process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
  try {
    const relay = startChild(
      'rtc-relay',
      [...profile, ...tsx, join(REPO_ROOT, 'apps/rtc-relay/src/main.ts')],
      {
        ...common,
        RELAY_ID: `relay-bench-${randomBytes(3).toString('hex')}`,
        ICE_BIND_ADDRESS: '127.0.0.1',
      },
      showLog,
    );
    const gateway = startChild(
      'signaling-gateway',
      [...profile, ...tsx, join(REPO_ROOT, 'apps/signaling-gateway/src/main.ts')],
      {
        ...common,
        HOST: '127.0.0.1',
        PORT: String(gatewayPort),
        JWT_SECRET: jwtSecret,
        SESSION_RATE_PER_IP: '100000000',
        SESSION_RATE_PER_SUBJECT: '100000000',
        // The session path never reads the chain; /v1/info only names it.
        RPC_URL: 'http://127.0.0.1:9',
        PUBLIC_RPC_URL: 'http://127.0.0.1:9',
        CHAIN_ID: '31337',
        CONTRACT_ADDRESS: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
        DEPLOYMENT_BLOCK: '1',
      },
      showLog,
    );
    const baseline = startChild(
      'baseline',
      [...tsx, SELF],
      { SESSIONS_BENCH_ROLE: 'baseline' },
      showLog,
    );
    children.push(relay, gateway, baseline);
    const clients = Array.from({ length: CLIENT_PROCESSES }, (_, i) =>
      startChild(`client-${i}`, [...tsx, SELF], { SESSIONS_BENCH_ROLE: 'client' }, showLog),
    );
    children.push(...clients);
    const baselineUrl = String((await baseline.next('listening', 90_000)).url);
    await Promise.all(clients.map((client) => client.next('ready', 90_000)));
    await waitForHttp(`${api}/healthz`, 90_000, [relay, gateway]);

    // The relay registers on its own: a first session tells when it is taking them.
    const probeToken = mint(jwtSecret, 'bench-probe');
    const deadline = Date.now() + 60_000;
    for (;;) {
      clients[0]!.process.stdin!.write(
        `${JSON.stringify({ cmd: 'run', api, tokens: [probeToken], warmupMs: 0, windowMs: 1 })}\n`,
      );
      const probe = (await clients[0]!.next('result', 30_000)) as unknown as RunResult;
      if (probe.failures.length === 0) break;
      if (Date.now() > deadline)
        throw new Error(`no session could be opened: ${probe.failures.join('; ')}`);
      await sleep(300);
    }

    const failures: string[] = [];
    const runOnce = async (
      target: 'ours' | 'trickle' | 'baseline',
      concurrency: number,
      round: number,
      warmUp = false,
    ) => {
      const url = target === 'baseline' ? baselineUrl : api;
      const tokens = Array.from({ length: concurrency }, (_, loop) =>
        target === 'baseline'
          ? ''
          : mint(jwtSecret, `bench-${target}-r${round}-c${concurrency}-l${loop}`),
      );
      const shares = clients.map((_, i) => tokens.filter((_, loop) => loop % clients.length === i));
      const started = Date.now();
      const cpuOf = () => ({
        gateway: cpuMs(gateway.process.pid),
        relay: cpuMs(relay.process.pid),
        baseline: cpuMs(baseline.process.pid),
        clients: clients.reduce((sum, client) => sum + cpuMs(client.process.pid), 0),
      });
      const cpuBefore = cpuOf();
      const results = await Promise.all(
        clients.map(async (client, i) => {
          if (shares[i]!.length === 0) return undefined;
          client.process.stdin!.write(
            `${JSON.stringify({ cmd: 'run', api: url, tokens: shares[i], warmupMs, windowMs: warmUp ? 600 : windowMs, trickle: target === 'trickle' })}\n`,
          );
          return (await client.next(
            'result',
            warmupMs + windowMs + 30_000,
          )) as unknown as RunResult;
        }),
      );
      const cpuAfter = cpuOf();
      const all = results.filter((r): r is RunResult => r !== undefined);
      const counted = all.reduce((sum, r) => sum + r.counted, 0);
      const setups = all.flatMap((r) => r.setups);
      const posts = all.flatMap((r) => r.posts);
      const connects = all.flatMap((r) => r.connects);
      if (!warmUp)
        for (const r of all)
          failures.push(...r.failures.map((f) => `${target} c${concurrency}: ${f}`));
      // Every session of the run (warm-up and tail included) shares the CPU figures.
      const sessionsRun = all.reduce((sum, r) => sum + r.sessions, 0);
      const perSession = (key: keyof typeof cpuAfter) =>
        ((cpuAfter[key] - cpuBefore[key]) / Math.max(1, sessionsRun)).toFixed(1);
      const cpuNote =
        target === 'baseline'
          ? `answerer ${perSession('baseline')}`
          : `gateway ${perSession('gateway')} + relay ${perSession('relay')}`;
      const figure = {
        rate: counted / (windowMs / 1000),
        p50: percentile(setups, 50),
        p90: percentile(setups, 90),
        post50: percentile(posts, 50),
        connect50: percentile(connects, 50),
      };
      if (!warmUp)
        console.log(
          `  round ${round} ${target.padEnd(8)} c${concurrency}: ${figure.rate.toFixed(1)} sessions/s, ` +
            `setup p50 ${figure.p50.toFixed(1)} ms p90 ${figure.p90.toFixed(1)} ms, POST→201 p50 ` +
            `${figure.post50.toFixed(1)} ms, pc→hello p50 ${figure.connect50.toFixed(1)} ms; CPU ms/session ${cpuNote}, clients ${perSession('clients')} ` +
            `(${counted} sessions, ${((Date.now() - started) / 1000).toFixed(1)} s)`,
        );
      // Let closing peers go before the next run.
      await sleep(400);
      return figure;
    };

    // Warm-up (not measured): both sides' code paths compiled, pools and queues open.
    await runOnce('ours', 10, -1, true);
    await runOnce('baseline', 10, -1, true);

    const rows: BenchRow[] = [];
    for (const concurrency of concurrencies) {
      const figures = { ours: [] as Figure[], baseline: [] as Figure[] };
      type Figure = Awaited<ReturnType<typeof runOnce>>;
      const runs = await alternate({
        rounds,
        ours: async (round) => {
          const f = await runOnce('ours', concurrency, round);
          figures.ours.push(f);
          return f.rate;
        },
        baseline: async (round) => {
          const f = await runOnce('baseline', concurrency, round);
          figures.baseline.push(f);
          return f.rate;
        },
      });
      const pick = (side: Figure[], key: keyof Figure) => side.map((f) => f[key]);
      const post = summarize(pick(figures.ours, 'post50')).median;
      const basePost = summarize(pick(figures.baseline, 'post50')).median;
      const note = `POST→201 p50 ${post.toFixed(1)} ms (bare: ${basePost.toFixed(1)} ms); ${concurrency} loops over ${CLIENT_PROCESSES} client processes`;
      const rateRow = compareRow({
        id: `session-setup-c${concurrency}`,
        what: `Session setup, concurrency ${concurrency} (POST → hello, then DELETE)`,
        unit: 'sessions/s',
        better: 'higher',
        baselineName: 'bare node-datachannel over HTTP',
        runs,
        note,
      });
      const p50s = {
        ours: pick(figures.ours, 'p50'),
        baseline: pick(figures.baseline, 'p50'),
        ratios: figures.ours.map((f, i) => f.p50 / figures.baseline[i]!.p50),
      };
      const latencyRow = compareRow({
        id: `session-setup-c${concurrency}-p50`,
        what: `Session setup p50, concurrency ${concurrency} (POST sent → hello received)`,
        unit: 'ms',
        better: 'lower',
        baselineName: 'bare node-datachannel over HTTP',
        runs: p50s,
        note,
      });
      if (concurrency === 50) {
        rateRow.bar = { text: '≥ 200 sessions/s', met: rateRow.ours.median >= 200 };
        latencyRow.bar = { text: 'p50 ≤ 50 ms', met: latencyRow.ours.median <= 50 };
      }
      rows.push(rateRow, latencyRow);

      // Trickle ICE (docs/protocol.md §3.1.2): ours posting at once and PATCHing the candidates,
      // against ours waiting for gathering. Timed from the peer connection's creation, since
      // what trickle saves is the wait for gathering before the POST.
      const trickled = { on: [] as Figure[], off: [] as Figure[] };
      await alternate({
        rounds,
        ours: async (round) => {
          const f = await runOnce('trickle', concurrency, round);
          trickled.on.push(f);
          return f.rate;
        },
        baseline: async (round) => {
          const f = await runOnce('ours', concurrency, round);
          trickled.off.push(f);
          return f.rate;
        },
      });
      rows.push(
        compareRow({
          id: `session-setup-c${concurrency}-trickle`,
          what: `Session setup p50 with trickle ICE, concurrency ${concurrency} (peer connection created → hello)`,
          unit: 'ms',
          better: 'lower',
          baselineName: 'ours without trickle (offer sent once gathered)',
          runs: {
            ours: pick(trickled.on, 'connect50'),
            baseline: pick(trickled.off, 'connect50'),
            ratios: trickled.on.map((f, i) => f.connect50 / trickled.off[i]!.connect50),
          },
          note: `sessions/s with trickle ${summarize(pick(trickled.on, 'rate')).median.toFixed(0)}, without ${summarize(pick(trickled.off, 'rate')).median.toFixed(0)}; loopback host candidates only, so gathering is short`,
        }),
      );
    }
    for (const row of rows) reportRow(row);
    if (failures.length > 0) {
      console.error(
        `${failures.length} sessions failed, e.g.:\n  ${failures.slice(0, 10).join('\n  ')}`,
      );
      process.exitCode = 1;
    }
    for (const client of clients)
      client.process.stdin!.write(`${JSON.stringify({ cmd: 'stop' })}\n`);
  } finally {
    await stopAll();
  }
}

if (ROLE === 'client') clientMain();
else if (ROLE === 'baseline') baselineMain();
else
  await main().catch((error: Error) => {
    console.error(error.stack ?? error.message);
    process.exitCode = 1;
  });
