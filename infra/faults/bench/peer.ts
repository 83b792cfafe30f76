/**
 * One client of the abuse benchmark, in its own process (two node-datachannel peers in one
 * process stall under load). MODE picks what it does:
 *
 * well-behaved
 *   publish   one session, RATE records/s; measures each record's ack latency (ack arrival −
 *             send time) and the session's setup time (POST /v1/sessions → channel open).
 *   probe     opens a new session every PROBE_MS (POST → channel open → hello), then DELETEs
 *             it: session setup times, and whether any session is refused.
 * attacker
 *   deep      publishes arrays nested DEPTH (30,000) deep, ~60 KB, as fast as the relay answers
 *   wide      publishes objects with KEYS (3,000) keys, as fast as the relay answers
 *   flood     publishes valid records as fast as the channel takes them
 *   grab      POSTs /v1/sessions in a loop with one token (CONCURRENCY loops)
 *   slow      holds SLOW_SOCKETS half-sent requests open: half never finish their headers, half
 *             never finish the body their Content-Length promises; each reopened once closed
 *   nulsub    POSTs /v1/sessions in a loop with a token whose `sub` holds U+0000
 *
 * Environment: MODE, API, TOKEN, TOPIC (demo), RATE (150), ID_PREFIX, PROBE_MS (2000),
 * WINDOW (4, deep/wide: publishes in flight), DEPTH (30000), KEYS (3000), CONCURRENCY (4),
 * SLOW_SOCKETS (200), ACKED_FILE (publish: where the acked recordIds go, one a line),
 * RECEIPTS_FILE (publish: also follow each acked record to its first `included` receipt; one
 * line per receipt, `sentAtEpochMs ackMs receiptMs`, both latencies from the send), RECEIPT_WAIT_MS
 * (publish with RECEIPTS_FILE: after `stop`, wait this long at most for the receipts still due),
 * DISCONNECT_GRACE_MS (10000, the relay's DISCONNECT_TIMEOUT_MS default: how long a peer
 * connection may stay `disconnected` before the session counts as ended), PUBLISH_LINES
 * (publish: most publishes in one message, as v2 publish lines; 1000, bounded by 64 KiB;
 * 1: one message per publish), PAYLOAD_BYTES (publish: canonical payload size, about; 200).
 *
 * Sessions speak protocol v2 (src/offer.ts): acks come many to an `acks` message, each
 * handled as v1's `ack` message was; receipts come as `receipts` and `anchoring` messages,
 * one receipt per record once ReceiptNotices has read them, as v1's `receipt` messages gave.
 *
 * stdin, one JSON command a line: {"cmd":"measure"} resets the figures (the measured window
 * starts), {"cmd":"stop"} stops; the process then prints {"event":"result",…} and exits.
 * Other stdout lines: {"event":"ready"}, {"event":"session",…}, {"event":"log",…}.
 */
import { writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import nodeDataChannel, { type DataChannel, type PeerConnection } from 'node-datachannel';
import { closePeer, offeringPeer } from '../src/offer';
import { ReceiptNotices } from '../src/receipt-notices';

const MODE = process.env.MODE ?? 'publish';
const API = process.env.API ?? '';
const TOKEN = process.env.TOKEN ?? '';
const TOPIC = process.env.TOPIC ?? 'demo';
const RATE = Number(process.env.RATE ?? 150);
const ID_PREFIX = process.env.ID_PREFIX ?? `${MODE}-`;
const PROBE_MS = Number(process.env.PROBE_MS ?? 2000);
const WINDOW = Number(process.env.WINDOW ?? 4);
const DEPTH = Number(process.env.DEPTH ?? 30_000);
const KEYS = Number(process.env.KEYS ?? 3000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 4);
const SLOW_SOCKETS = Number(process.env.SLOW_SOCKETS ?? 200);
const ACKED_FILE = process.env.ACKED_FILE;
const RECEIPTS_FILE = process.env.RECEIPTS_FILE;
const RECEIPT_WAIT_MS = Number(process.env.RECEIPT_WAIT_MS ?? 0);
const DISCONNECT_GRACE_MS = Number(process.env.DISCONNECT_GRACE_MS ?? 10_000);
const PUBLISH_LINES = Math.max(1, Number(process.env.PUBLISH_LINES ?? 1000));
/** publish: about how many bytes each record's canonical payload is (issue 7 measures 200). */
const PAYLOAD_BYTES = Number(process.env.PAYLOAD_BYTES ?? 200);
/** The relay's default maxMessageBytes (hello): a message of publish lines stays within it. */
const MESSAGE_BYTES = 65_536;

const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now();

let stopping = false;
/** Figures of the measured window (reset by `measure`). */
const figures = {
  latencies: [] as number[],
  setups: [] as number[],
  refused: [] as string[],
  sent: 0,
  acked: 0,
  nacks: {} as Record<string, number>,
  statuses: {} as Record<string, number>,
  disconnects: [] as string[],
  extra: {} as Record<string, number>,
  /** Publish with RECEIPTS_FILE: first `included` receipts received in the window. */
  receipts: 0,
};
/** Over the whole run (not reset): what the lost-record check needs. */
const whole = {
  sent: 0,
  acked: 0,
  nacked: 0,
  unanswered: 0,
  ackedIds: [] as string[],
  /** Publish with RECEIPTS_FILE: acked records that got their first `included` receipt. */
  receipted: 0,
};
const count = (table: Record<string, number>, key: string, n = 1) => {
  table[key] = (table[key] ?? 0) + n;
};

// ---------------------------------------------------------------------------------------------
// Sessions

interface Session {
  pc: PeerConnection;
  dc: DataChannel;
  dead: boolean;
  location: string | undefined;
  setupMs: number;
  onText: (data: Record<string, unknown>) => void;
  onEnd: (reason: string) => void;
}

class Refused extends Error {}

/**
 * POST /v1/sessions with a fresh offer, wait for the channel to open and the relay's hello.
 * Setup time = POST sent → data channel open. Throws Refused for an HTTP refusal.
 */
async function openSession(
  onText: (data: Record<string, unknown>) => void,
  onEnd: (reason: string) => void,
): Promise<Session> {
  const { pc, dc, offer } = offeringPeer(`bench-${MODE}`);
  let hello: () => void = () => {};
  const helloPromise = new Promise<void>((resolve) => {
    hello = resolve;
  });
  let openedAt = 0;
  const session: Session = { pc, dc, dead: false, location: undefined, setupMs: 0, onText, onEnd };
  let disconnected: ReturnType<typeof setTimeout> | undefined;
  const end = (reason: string) => {
    if (session.dead) return;
    session.dead = true;
    clearTimeout(disconnected);
    closePeer(session);
    session.onEnd(reason);
  };
  // As the browser SDK and the relay do: `disconnected` is transient (ICE may come back), so
  // the session ends only when it lasts DISCONNECT_GRACE_MS, or on `failed` / `closed`.
  pc.onStateChange((state) => {
    if (state === 'connected' && disconnected) {
      clearTimeout(disconnected);
      disconnected = undefined;
      count(figures.extra, 'peer connection recovered');
    } else if (state === 'disconnected' && !disconnected) {
      count(figures.extra, 'peer connection disconnected');
      disconnected = setTimeout(
        () => end(`peer connection disconnected for ${DISCONNECT_GRACE_MS} ms`),
        DISCONNECT_GRACE_MS,
      );
    } else if (state === 'failed' || state === 'closed') end(`peer connection ${state}`);
  });
  dc.onOpen(() => {
    openedAt = now();
  });
  dc.onClosed(() => end('data channel closed'));
  dc.onError((error) => end(`data channel error: ${error}`));
  dc.onMessage((message) => {
    if (typeof message !== 'string') return;
    let data: Record<string, unknown>;
    try {
      data = JSON.parse(message) as Record<string, unknown>;
    } catch {
      return;
    }
    if (data.type === 'hello') {
      if (!openedAt) openedAt = now();
      hello();
      return;
    }
    if (data.type === 'acks') {
      // v2: the acks of consecutive publishes in one message, each handed on as an `ack`.
      const acks = Array.isArray(data.acks) ? (data.acks as Record<string, unknown>[]) : [];
      for (const ack of acks) session.onText({ ...ack, type: 'ack' });
      return;
    }
    session.onText(data);
  });
  const fail = () => {
    session.dead = true;
    closePeer(session);
  };
  try {
    const sdp = await offer;
    const started = now();
    const response = await fetch(`${API}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${TOKEN}` },
      body: sdp,
      signal: AbortSignal.timeout(15_000),
    });
    const body = await response.text();
    if (response.status !== 201)
      throw new Refused(`${response.status} ${body.slice(0, 160).replace(/\s+/g, ' ')}`);
    session.location = response.headers.get('location') ?? undefined;
    pc.setRemoteDescription(body, 'answer');
    await Promise.race([
      helloPromise,
      sleep(15_000).then(() => {
        throw new Error('no hello within 15 s of the answer');
      }),
    ]);
    session.setupMs = (openedAt || now()) - started;
    return session;
  } catch (error) {
    fail();
    throw error;
  }
}

async function deleteSession(session: Session): Promise<number | undefined> {
  if (!session.location) return undefined;
  const url = new URL(session.location, API).toString();
  try {
    const response = await fetch(url, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: AbortSignal.timeout(10_000),
    });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return undefined;
  }
}

function closeSession(session: Session | undefined): void {
  if (!session || session.dead) return;
  session.dead = true;
  try {
    session.dc.close();
  } catch {}
  try {
    session.pc.close();
  } catch {}
}

// ---------------------------------------------------------------------------------------------
// publish (well-behaved): RATE records/s, latency per record

async function runPublish(): Promise<void> {
  let session: Session | undefined;
  let connecting = false;
  const pending = new Map<string, number>();
  let counter = 0;
  let credit = 0;
  let last = now();
  // {"at":1764000000000,"fill":"…","n":1234567} is 43 bytes around the filler.
  const filler = 'x'.repeat(Math.max(0, PAYLOAD_BYTES - 43));
  /** RECEIPTS_FILE: acked recordId → [send time, ack latency], until its first receipt. */
  const awaiting = new Map<string, [number, number]>();
  const receiptLines: string[] = [];
  /** The current session's receipt messages, one notice per record (new for each session). */
  let notices = new ReceiptNotices();

  const onReceipt = (recordIdAsSent: string, status: string) => {
    const recordId = recordIdAsSent.toLowerCase();
    const due = awaiting.get(recordId);
    count(figures.extra, `receipt ${status}${due ? '' : ' (not awaited)'}`);
    if (!due || status !== 'included') return;
    awaiting.delete(recordId);
    receiptLines.push(
      `${Math.round(performance.timeOrigin + due[0])} ${due[1].toFixed(1)} ${(now() - due[0]).toFixed(1)}`,
    );
    figures.receipts += 1;
    whole.receipted += 1;
  };

  const onText = (data: Record<string, unknown>) => {
    if (data.type === 'receipt' || data.type === 'receipts' || data.type === 'anchoring') {
      if (!RECEIPTS_FILE) return;
      for (const { recordId, status } of notices.read(data)) onReceipt(recordId, status);
      return;
    }
    if (data.type !== 'ack' && data.type !== 'nack') return;
    const id = String(data.id);
    const sentAt = pending.get(id);
    if (sentAt === undefined) return;
    pending.delete(id);
    if (data.type === 'ack') {
      figures.latencies.push(now() - sentAt);
      figures.acked += 1;
      whole.acked += 1;
      whole.ackedIds.push(String(data.recordId).toLowerCase());
      if (RECEIPTS_FILE)
        awaiting.set(String(data.recordId).toLowerCase(), [sentAt, now() - sentAt]);
    } else {
      count(figures.nacks, String(data.code));
      whole.nacked += 1;
    }
  };
  const onEnd = (reason: string) => {
    // Ends after `stop` are ours (the DELETE at the end), not the relay's.
    if (!stopping) figures.disconnects.push(reason);
    whole.unanswered += pending.size;
    pending.clear();
    session = undefined;
    notices = new ReceiptNotices();
  };
  const connect = async () => {
    if (connecting || session || stopping) return;
    connecting = true;
    try {
      session = await openSession(onText, onEnd);
      figures.setups.push(session.setupMs);
      emit({ event: 'session', setupMs: session.setupMs });
    } catch (error) {
      figures.refused.push((error as Error).message);
      emit({ event: 'log', message: `session refused: ${(error as Error).message}` });
      await sleep(500);
    } finally {
      connecting = false;
    }
  };
  void connect();
  const timer = setInterval(() => {
    const t = now();
    const elapsed = t - last;
    last = t;
    if (!session || session.dead) {
      credit = 0;
      if (!stopping) void connect();
      return;
    }
    if (stopping) return;
    credit = Math.min(credit + (RATE * elapsed) / 1000, RATE / 10);
    const dc = session.dc;
    // This tick's publishes go out as v2 publish lines, PUBLISH_LINES to a message, as the
    // SDK coalesces the publishes of one task.
    let lines: string[] = [];
    let ids: string[] = [];
    let bytes = 0;
    const sendLines = (): boolean => {
      if (lines.length === 0) return true;
      try {
        dc.sendMessage(lines.join('\n'));
      } catch {
        return false;
      }
      const sentAt = now();
      for (const id of ids) pending.set(id, sentAt);
      figures.sent += ids.length;
      whole.sent += ids.length;
      lines = [];
      ids = [];
      bytes = 0;
      return true;
    };
    while (credit >= 1) {
      if (!dc.isOpen() || dc.bufferedAmount() > 1024 * 1024) break;
      credit -= 1;
      const id = `${ID_PREFIX}${counter++}`;
      const line = JSON.stringify({
        type: 'publish',
        id,
        topic: TOPIC,
        payload: { n: counter, at: Date.now(), fill: filler },
      });
      if (lines.length >= PUBLISH_LINES || bytes + line.length + 1 > MESSAGE_BYTES) {
        if (!sendLines()) return;
      }
      lines.push(line);
      ids.push(id);
      bytes += line.length + 1;
    }
    sendLines();
  }, 10);
  await stopped;
  clearInterval(timer);
  // Every publish sent gets its answer (or 15 s pass).
  const deadline = Date.now() + 15_000;
  while (pending.size > 0 && session && !session.dead && Date.now() < deadline) await sleep(50);
  whole.unanswered += pending.size;
  figures.extra.unanswered = whole.unanswered;
  if (RECEIPTS_FILE) {
    const receiptDeadline = Date.now() + RECEIPT_WAIT_MS;
    while (awaiting.size > 0 && session && !session.dead && Date.now() < receiptDeadline)
      await sleep(50);
    figures.extra.receiptsMissing = awaiting.size;
    writeFileSync(RECEIPTS_FILE, receiptLines.join('\n'));
  }
  if (session) await deleteSession(session);
  closeSession(session);
  if (ACKED_FILE) writeFileSync(ACKED_FILE, whole.ackedIds.join('\n'));
}

// ---------------------------------------------------------------------------------------------
// probe (well-behaved): a new session every PROBE_MS

async function runProbe(): Promise<void> {
  while (!stopping) {
    const started = Date.now();
    try {
      const session = await openSession(
        () => {},
        () => {},
      );
      figures.setups.push(session.setupMs);
      const status = await deleteSession(session);
      count(figures.statuses, `DELETE ${status ?? 'failed'}`);
      closeSession(session);
    } catch (error) {
      figures.refused.push((error as Error).message);
      emit({ event: 'log', message: `probe refused: ${(error as Error).message}` });
    }
    const wait = PROBE_MS - (Date.now() - started);
    if (wait > 0) await Promise.race([sleep(wait), stopped]);
  }
}

// ---------------------------------------------------------------------------------------------
// deep / wide / flood (attacker): one session at a time, reopened when it dies

async function runPublishAttack(kind: 'deep' | 'wide' | 'flood'): Promise<void> {
  let payload: string;
  if (kind === 'deep') payload = '['.repeat(DEPTH) + ']'.repeat(DEPTH);
  else if (kind === 'wide')
    payload = `{${Array.from({ length: KEYS }, (_, i) => `"k${i}":${i}`).join(',')}}`;
  else payload = '{"flood":true,"fill":"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"}';
  figures.extra.messageBytes = Buffer.byteLength(
    `{"type":"publish","id":"${ID_PREFIX}0000000","topic":"${TOPIC}","payload":${payload}}`,
  );
  let counter = 0;
  while (!stopping) {
    let answered = 0;
    let sent = 0;
    let lastAnswer = Date.now();
    let ended = false;
    let session: Session;
    try {
      session = await openSession(
        (data) => {
          if (data.type === 'ack') {
            figures.acked += 1;
            answered += 1;
            lastAnswer = Date.now();
          } else if (data.type === 'nack') {
            count(figures.nacks, String(data.code));
            answered += 1;
            lastAnswer = Date.now();
          }
        },
        (reason) => {
          ended = true;
          if (!stopping) figures.disconnects.push(reason);
        },
      );
      count(figures.extra, 'sessions');
    } catch (error) {
      count(figures.statuses, `session refused ${(error as Error).message.slice(0, 3)}`);
      await Promise.race([sleep(500), stopped]);
      continue;
    }
    while (!stopping && !ended) {
      const window = kind === 'flood' ? Number.POSITIVE_INFINITY : WINDOW;
      let burst = 0;
      while (
        sent - answered < window &&
        burst < 500 &&
        session.dc.isOpen() &&
        session.dc.bufferedAmount() < 512 * 1024
      ) {
        try {
          session.dc.sendMessage(
            `{"type":"publish","id":"${ID_PREFIX}${counter++}","topic":"${TOPIC}","payload":${payload}}`,
          );
        } catch {
          ended = true;
          break;
        }
        sent += 1;
        burst += 1;
        figures.sent += 1;
      }
      if (sent > answered && Date.now() - lastAnswer > 5000) {
        // Unanswered for 5 s: count it and go on (the window would otherwise stall forever).
        count(figures.extra, 'stalls');
        answered = sent;
        lastAnswer = Date.now();
      }
      await new Promise((resolve) => (burst > 0 ? setImmediate(resolve) : setTimeout(resolve, 1)));
    }
    figures.extra.unanswered = (figures.extra.unanswered ?? 0) + Math.max(0, sent - answered);
    await deleteSession(session);
    closeSession(session);
  }
}

// ---------------------------------------------------------------------------------------------
// grab / nulsub (attacker): POST /v1/sessions in CONCURRENCY loops, one offer for all

async function runPostLoop(): Promise<void> {
  const peer = offeringPeer('bench-attacker-offer');
  const sdp = await peer.offer;
  const loop = async () => {
    while (!stopping) {
      try {
        const response = await fetch(`${API}/v1/sessions`, {
          method: 'POST',
          headers: { 'content-type': 'application/sdp', authorization: `Bearer ${TOKEN}` },
          body: sdp,
          signal: AbortSignal.timeout(15_000),
        });
        const body = await response.text();
        let code = '';
        try {
          code = String((JSON.parse(body) as { code?: string }).code ?? '');
        } catch {}
        count(figures.statuses, response.status === 201 ? '201' : `${response.status} ${code}`);
      } catch (error) {
        count(figures.statuses, `error ${(error as Error).name}`);
        await sleep(100);
      }
      figures.sent += 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  closePeer(peer);
}

// ---------------------------------------------------------------------------------------------
// slow (attacker): SLOW_SOCKETS half-sent requests, one byte more every 2 s, reopened when closed

async function runSlow(): Promise<void> {
  const url = new URL(API);
  const port = Number(url.port);
  /** Socket → when it was opened. */
  const ages = new Map<Socket, number>();
  const heldMs: Record<'body' | 'headers', number[]> = { body: [], headers: [] };
  // Half never finish their headers (a header line every 2 s: HEADERS_TIMEOUT_MS); half send
  // whole headers promising a body (within the SDP size limit) and never finish it, one byte
  // every 2 s (REQUEST_TIMEOUT_MS).
  const heads = {
    body:
      `POST /v1/sessions HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/sdp\r\n` +
      `Authorization: Bearer ${TOKEN}\r\nContent-Length: 20000\r\n\r\nv=0\r\n`,
    headers: `POST /v1/sessions HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/sdp\r\n`,
  };
  const start = (kind: 'body' | 'headers') => {
    const opened = Date.now();
    const socket = netConnect({ host: url.hostname, port });
    let answered = false;
    ages.set(socket, opened);
    figures.sent += 1;
    socket.setNoDelay(true);
    socket.on('connect', () => socket.write(heads[kind]));
    socket.on('data', (chunk) => {
      if (answered) return;
      answered = true;
      const status = /^HTTP\/1\.1 (\d{3})/.exec(chunk.toString('latin1'))?.[1] ?? 'other';
      count(figures.statuses, `${kind} ${status}`);
    });
    let n = 0;
    const trickle = setInterval(() => {
      if (socket.destroyed || !socket.writable) return;
      socket.write(kind === 'body' ? 'a' : `X-Slow-${n++}: 1\r\n`);
    }, 2000);
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(trickle);
      ages.delete(socket);
      if (stopping) return;
      if (!answered) count(figures.statuses, `${kind} closed without answer`);
      heldMs[kind].push(Date.now() - opened);
      count(figures.extra, 'closed by server');
      setTimeout(() => start(kind), 50);
    });
  };
  for (let i = 0; i < SLOW_SOCKETS; i++) start(i % 2 === 0 ? 'body' : 'headers');
  const sampler = setInterval(() => {
    figures.extra.maxOpen = Math.max(figures.extra.maxOpen ?? 0, ages.size);
  }, 250);
  await stopped;
  clearInterval(sampler);
  figures.extra.openAtStop = ages.size;
  const at = Date.now();
  figures.extra.oldestOpenMs = Math.max(0, ...[...ages.values()].map((opened) => at - opened));
  for (const kind of ['body', 'headers'] as const) {
    const held = heldMs[kind].sort((x, y) => x - y);
    if (held.length) {
      figures.extra[`${kind}HeldMsMin`] = held[0]!;
      figures.extra[`${kind}HeldMsMax`] = held[held.length - 1]!;
      figures.extra[`${kind}HeldMsMedian`] = held[held.length >> 1]!;
    }
  }
  for (const socket of ages.keys()) socket.destroy();
}

// ---------------------------------------------------------------------------------------------

let stop: () => void = () => {};
const stopped = new Promise<void>((resolve) => {
  stop = resolve;
});

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let command: { cmd?: string };
  try {
    command = JSON.parse(line) as { cmd?: string };
  } catch {
    return;
  }
  if (command.cmd === 'measure') {
    figures.latencies = [];
    figures.setups = [];
    figures.refused = [];
    figures.sent = 0;
    figures.acked = 0;
    figures.nacks = {};
    figures.statuses = {};
    figures.disconnects = [];
    figures.receipts = 0;
    const keep = { unanswered: figures.extra.unanswered, messageBytes: figures.extra.messageBytes };
    figures.extra = {};
    for (const [key, value] of Object.entries(keep))
      if (value !== undefined) figures.extra[key] = value;
  } else if (command.cmd === 'stop') {
    stopping = true;
    stop();
  }
});
lines.on('close', () => {
  stopping = true;
  stop();
  setTimeout(() => process.exit(0), 3000).unref();
});

const runners: Record<string, () => Promise<void>> = {
  publish: runPublish,
  probe: runProbe,
  deep: () => runPublishAttack('deep'),
  wide: () => runPublishAttack('wide'),
  flood: () => runPublishAttack('flood'),
  grab: runPostLoop,
  nulsub: runPostLoop,
  slow: runSlow,
};
const runner = runners[MODE];
if (!runner) {
  emit({ event: 'error', message: `unknown MODE ${MODE}` });
  process.exit(2);
}
emit({ event: 'ready' });
runner()
  .catch((error: Error) => emit({ event: 'error', message: error.stack ?? error.message }))
  .finally(() => {
    emit({
      event: 'result',
      mode: MODE,
      ...figures,
      whole: {
        sent: whole.sent,
        acked: whole.acked,
        nacked: whole.nacked,
        unanswered: whole.unanswered,
        receipted: whole.receipted,
      },
    });
    nodeDataChannel.cleanup();
    // Exit once the result line has left: on a long run it holds every latency (megabytes),
    // and exiting after a fixed delay cut it short, so the parent saw no result at all.
    process.stdout.write('', () => process.exit(0));
  });
