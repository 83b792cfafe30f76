/**
 * A publisher in its own process (two node-datachannel peers in one process stall under
 * load, and the fault tests kill things around it): opens a session through the signaling
 * gateway (POST /v1/sessions with the SDP offer, WHIP-style), streams `publish` messages at
 * a steady rate and prints every answer as one JSON line on stdout. When the session dies
 * (relay killed, channel closed, or no answer for STALL_MS) it opens a new one and goes on;
 * publishes left unanswered by a dead session are reported as `unanswered` (maybe stored, maybe
 * not: the protocol's "no ack, no knowledge").
 *
 * Environment: API (gateway base URL), TOKEN, TOPIC (default demo), RATE (records/s,
 * default 20), ID_PREFIX (default p-), PAYLOAD_BYTES (default 64), STALL_MS (default 5000).
 *
 * stdin, one JSON command a line: {"cmd":"stop"} stops publishing; once every publish got
 * its answer (or was left unanswered) it prints {"event":"done",…} and exits when stdin closes.
 *
 * stdout events: ready, session {sessionId, relay}, ack {id, recordId, contentHash, acceptedAt},
 * nack {id, code},
 * receipt {recordId, status}, disconnected {reason, unanswered}, retry {status, message},
 * error {message}, done {sent, acked, nacked, unanswered, sessions}.
 *
 * The channel speaks protocol v2 (offer.ts): acks come many to an `acks` message, and a
 * batch's receipts as `receipts` and `anchoring` messages (which ReceiptNotices reads); each
 * still gives one `ack` event per publish and one `receipt` event per record, as v1's `ack`
 * and `receipt` messages did.
 */
import { createInterface } from 'node:readline';
import nodeDataChannel, { type DataChannel, type PeerConnection } from 'node-datachannel';
import { closePeer, offeringPeer } from './offer';
import { ReceiptNotices } from './receipt-notices';

const API = process.env.API ?? '';
const TOKEN = process.env.TOKEN ?? '';
const TOPIC = process.env.TOPIC ?? 'demo';
const RATE = Number(process.env.RATE ?? 20);
const ID_PREFIX = process.env.ID_PREFIX ?? 'p-';
const PAYLOAD_BYTES = Number(process.env.PAYLOAD_BYTES ?? 64);
const STALL_MS = Number(process.env.STALL_MS ?? 5000);
const TICK_MS = 50;

const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

interface Session {
  pc: PeerConnection;
  dc: DataChannel;
  open: boolean;
  dead: boolean;
  location: string | undefined;
  /** Publish id → time sent, for the publishes not answered yet. */
  pending: Map<string, number>;
  /** This session's receipt messages, per record (v2 `anchoring` needs its `receipts` before). */
  notices: ReceiptNotices;
}

let session: Session | undefined;
let connecting = false;
let stopping = false;
let counter = 0;
let credit = 0;
const totals = { sent: 0, acked: 0, nacked: 0, unanswered: 0, sessions: 0 };
const filler = 'x'.repeat(Math.max(0, PAYLOAD_BYTES - 24));

function endSession(reason: string): void {
  const current = session;
  if (!current || current.dead) return;
  current.dead = true;
  session = undefined;
  const unanswered = current.pending.size;
  totals.unanswered += unanswered;
  current.pending.clear();
  emit({ event: 'disconnected', reason, unanswered });
  try {
    current.dc.close();
  } catch {}
  try {
    current.pc.close();
  } catch {}
  maybeDone();
}

function onMessage(current: Session, message: string | Buffer | ArrayBuffer): void {
  if (typeof message !== 'string') return;
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(message) as Record<string, unknown>;
  } catch {
    emit({ event: 'error', message: `not JSON from the relay: ${message.slice(0, 80)}` });
    return;
  }
  switch (data.type) {
    case 'hello':
      current.open = true;
      emit({ event: 'session', sessionId: data.sessionId });
      return;
    case 'ack':
      onAck(current, data);
      return;
    case 'acks':
      // v2: the acks of consecutive publishes in one message, each as an `ack` message.
      for (const ack of Array.isArray(data.acks) ? (data.acks as Record<string, unknown>[]) : [])
        onAck(current, ack);
      return;
    case 'nack':
      if (!current.pending.delete(String(data.id))) return;
      totals.nacked += 1;
      emit({ event: 'nack', id: data.id, code: data.code });
      maybeDone();
      return;
    case 'receipt':
    case 'receipts':
    case 'anchoring':
      for (const { recordId, status } of current.notices.read(data))
        emit({ event: 'receipt', recordId, status });
      return;
    default:
      return;
  }
}

/** One ack (a v1 `ack` message, or one element of a v2 `acks` message). */
function onAck(current: Session, ack: Record<string, unknown>): void {
  if (!current.pending.delete(String(ack.id))) return;
  totals.acked += 1;
  emit({
    event: 'ack',
    id: ack.id,
    recordId: ack.recordId,
    contentHash: ack.contentHash,
    acceptedAt: ack.acceptedAt,
  });
  maybeDone();
}

async function connect(): Promise<void> {
  if (connecting || session || stopping) return;
  connecting = true;
  try {
    for (let attempt = 0; !stopping; attempt++) {
      try {
        session = await openSession();
        totals.sessions += 1;
        return;
      } catch (error) {
        emit({ event: 'retry', attempt, message: (error as Error).message });
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 250 * (attempt + 1))));
      }
    }
  } finally {
    connecting = false;
  }
}

async function openSession(): Promise<Session> {
  const { pc, dc, offer } = offeringPeer('faults-publisher');
  const current: Session = {
    pc,
    dc,
    open: false,
    dead: false,
    location: undefined,
    pending: new Map(),
    notices: new ReceiptNotices(),
  };
  let opened: () => void = () => {};
  const openedPromise = new Promise<void>((resolve) => {
    opened = resolve;
  });
  pc.onStateChange((state) => {
    if (state === 'disconnected' || state === 'failed' || state === 'closed')
      endSession(`peer connection ${state}`);
  });
  dc.onOpen(() => opened());
  dc.onClosed(() => endSession('data channel closed'));
  dc.onError((error) => endSession(`data channel error: ${error}`));
  dc.onMessage((message) => {
    onMessage(current, message);
    if (current.open) opened();
  });
  try {
    const sdp = await offer;
    const response = await fetch(`${API}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${TOKEN}` },
      body: sdp,
      signal: AbortSignal.timeout(10_000),
    });
    const body = await response.text();
    if (response.status !== 201)
      throw new Error(`POST /v1/sessions: ${response.status} ${body.slice(0, 200)}`);
    current.location = response.headers.get('location') ?? undefined;
    pc.setRemoteDescription(body, 'answer');
    await Promise.race([
      openedPromise,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the data channel did not open within 15 s')), 15_000),
      ),
    ]);
    // Wait for the relay's hello, so publishes go to a session the relay knows.
    for (let i = 0; i < 100 && !current.open && !current.dead; i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    if (!current.open) throw new Error('no hello from the relay');
    return current;
  } catch (error) {
    current.dead = true;
    closePeer(current);
    throw error;
  }
}

function tick(): void {
  const current = session;
  if (!current || current.dead) {
    if (!stopping) void connect();
    return;
  }
  // A session whose oldest publish waits too long for its answer is dead (relay killed:
  // ICE consent takes a while to notice).
  const oldest = current.pending.values().next().value;
  if (oldest !== undefined && Date.now() - oldest > STALL_MS) {
    endSession(`no answer for ${STALL_MS} ms`);
    return;
  }
  if (stopping) return;
  credit = Math.min(credit + (RATE * TICK_MS) / 1000, RATE);
  while (credit >= 1) {
    credit -= 1;
    if (!current.dc.isOpen() || current.dc.bufferedAmount() > 1024 * 1024) return;
    const id = `${ID_PREFIX}${counter++}`;
    try {
      current.dc.sendMessage(
        JSON.stringify({
          type: 'publish',
          id,
          topic: TOPIC,
          payload: { n: counter, at: Date.now(), fill: filler },
        }),
      );
    } catch (error) {
      endSession(`send failed: ${(error as Error).message}`);
      return;
    }
    current.pending.set(id, Date.now());
    totals.sent += 1;
  }
}

let doneEmitted = false;
function maybeDone(): void {
  if (!stopping || doneEmitted) return;
  if (session && session.pending.size > 0) return;
  doneEmitted = true;
  emit({ event: 'done', ...totals });
}

const timer = setInterval(tick, TICK_MS);

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  try {
    const command = JSON.parse(line) as { cmd: string };
    if (command.cmd === 'stop') {
      stopping = true;
      maybeDone();
    }
  } catch (error) {
    emit({ event: 'error', message: (error as Error).message });
  }
});
lines.on('close', () => {
  clearInterval(timer);
  const current = session;
  session = undefined;
  try {
    current?.dc.close();
    current?.pc.close();
  } catch {}
  nodeDataChannel.cleanup();
  process.exit(0);
});
emit({ event: 'ready' });
void connect();
