/**
 * Many subscribers in one process, for bench/fanout.ts: node-datachannel peer connections in
 * named groups (one process per subscriber does not scale on a small machine). Speaks JSON
 * lines like test/support/client-process.ts (and is driven through its ClientProcess):
 * commands on stdin, events on stdout.
 *
 * Commands:
 *   {"cmd":"open","group","count","protocol"?}   opens `count` more peers in the group (a data
 *                                                channel `records` each, default streamanchor.v2)
 *                                                → {"event":"offers","group","first","sdps":[…]}
 *                                                once every new one gathered its candidates
 *   {"cmd":"answers","group","first","sdps"}     answers of peers first…first+n−1
 *                                                → {"event":"opened","group","count"} once all their
 *                                                channels opened
 *   {"cmd":"subscribe","group","topic"}          each peer of the group not yet subscribed sends
 *                                                {"type":"subscribe","id":"s","topics":[{"topic"}]}
 *                                                → {"event":"subscribed","group","count"} once every one
 *                                                got its `subscribed` (a nack is a problem, below)
 *   {"cmd":"expect","group","records"}           starts a run: every peer of the group must now get
 *                                                `records` records, payload.n 0, 1, … in order
 *                                                → {"event":"expecting","group"}, then
 *                                                {"event":"received","group","deliveries","histogram"}
 *                                                once every peer got them all
 *   {"cmd":"report","group"}                     → {"event":"report","group","peers","complete","least","most"}
 *   {"cmd":"close","group"}                      closes the group's peers → {"event":"closedGroup","group"}
 *
 * Records are `records` messages of the relay (§5.9: positions must follow each other from
 * the `after` of `subscribed`), or, from the bench's bare forwarder, the publisher's
 * `publish` messages as they were sent. Each record's latency is this process's
 * performance.timeOrigin + performance.now() when its message arrived minus the payload's
 * `sentAt` (the publisher's clock: same machine). `histogram`: [[key, count], …] with key
 * round(ms × 100) below 100 ms (10 µs steps) and 10,000 + round(ms − 100) above (1 ms steps).
 *
 * Problems (a record out of order, twice, outside a run, a nack, an unexpected message, a
 * peer that failed) are kept and sent with every event as `problems` (the first 20; the
 * bench fails on any), plus `problemCount`.
 */
import { createInterface } from 'node:readline';
import nodeDataChannel, { type DataChannel, type PeerConnection } from 'node-datachannel';

type Command =
  | { cmd: 'open'; group: string; count: number; protocol?: string }
  | { cmd: 'answers'; group: string; first: number; sdps: string[] }
  | { cmd: 'subscribe'; group: string; topic: string }
  | { cmd: 'expect'; group: string; records: number }
  | { cmd: 'report'; group: string }
  | { cmd: 'close'; group: string };

interface Peer {
  index: number;
  pc: PeerConnection;
  dc: DataChannel;
  open: boolean;
  closing: boolean;
  /** Subscribe sent; `subscribed` got. */
  subscribing: boolean;
  subscribed: boolean;
  /** The last position received (relay records), from `subscribed`'s `after` on. */
  lastPosition: number | undefined;
  /** The payload.n expected next in the current run. */
  next: number;
}

interface Run {
  records: number;
  complete: number;
  deliveries: number;
  histogram: Map<number, number>;
}

interface Group {
  name: string;
  peers: Peer[];
  /** Peers whose channel should open before `opened` is sent: [first, end). */
  opening: { first: number; end: number } | undefined;
  subscribing: boolean;
  run: Run | undefined;
}

const groups = new Map<string, Group>();
/**
 * Peers of closed groups, kept until cleanup(): node-datachannel 0.33.4 segfaults in
 * cleanup() on a DataChannel object garbage-collected before its close reached JavaScript.
 */
const closedPeers: Peer[] = [];
const problems: string[] = [];
let problemCount = 0;

const emit = (event: Record<string, unknown>) =>
  process.stdout.write(
    `${JSON.stringify({ ...event, problems: problems.slice(0, 20), problemCount })}\n`,
  );

function problem(text: string): void {
  problemCount += 1;
  if (problems.length < 20) problems.push(text);
}

function groupOf(name: string): Group {
  let group = groups.get(name);
  if (!group) {
    group = { name, peers: [], opening: undefined, subscribing: false, run: undefined };
    groups.set(name, group);
  }
  return group;
}

const keyOf = (ms: number) => (ms < 100 ? Math.round(ms * 100) : 10_000 + Math.round(ms - 100));

interface PayloadLike {
  n?: unknown;
  sentAt?: unknown;
}

function onRecord(group: Group, peer: Peer, payload: PayloadLike, now: number): void {
  const run = group.run;
  const where = `${group.name}#${peer.index}`;
  if (!run) {
    problem(`${where}: a record outside a run (n ${String(payload.n)})`);
    return;
  }
  if (typeof payload.n !== 'number' || typeof payload.sentAt !== 'number') {
    problem(`${where}: a record without n or sentAt`);
    return;
  }
  if (peer.next >= run.records) {
    problem(`${where}: a record more than the run's ${run.records} (n ${payload.n})`);
    return;
  }
  if (payload.n !== peer.next) {
    problem(`${where}: record n ${payload.n} where ${peer.next} was due`);
    // Resynchronized on what came, so that one gap is reported once.
    peer.next = payload.n;
  }
  peer.next += 1;
  const key = keyOf(now - payload.sentAt);
  run.histogram.set(key, (run.histogram.get(key) ?? 0) + 1);
  run.deliveries += 1;
  if (peer.next === run.records) {
    run.complete += 1;
    if (run.complete === group.peers.length) {
      group.run = undefined;
      emit({
        event: 'received',
        group: group.name,
        deliveries: run.deliveries,
        histogram: [...run.histogram],
      });
    }
  }
}

interface ServerMessageLike {
  type?: string;
  code?: string;
  message?: string;
  topics?: { after?: number }[];
  records?: { position?: number; payload?: PayloadLike }[];
  payload?: PayloadLike;
}

function onMessage(group: Group, peer: Peer, text: string): void {
  const now = performance.timeOrigin + performance.now();
  const where = `${group.name}#${peer.index}`;
  let data: ServerMessageLike;
  try {
    data = JSON.parse(text) as ServerMessageLike;
  } catch {
    problem(`${where}: a message that is not JSON`);
    return;
  }
  switch (data.type) {
    case 'records':
      for (const record of data.records ?? []) {
        const position = record.position;
        if (peer.lastPosition !== undefined && position !== peer.lastPosition + 1)
          problem(`${where}: position ${String(position)} after ${peer.lastPosition}`);
        if (typeof position === 'number') peer.lastPosition = position;
        onRecord(group, peer, record.payload ?? {}, now);
      }
      return;
    case 'publish':
      // The bare forwarder's: the publish as the publisher sent it.
      onRecord(group, peer, data.payload ?? {}, now);
      return;
    case 'hello':
      return;
    case 'subscribed': {
      if (!peer.subscribing || peer.subscribed) {
        problem(`${where}: an unexpected subscribed`);
        return;
      }
      peer.subscribed = true;
      peer.lastPosition = data.topics?.[0]?.after;
      if (group.subscribing && group.peers.every((p) => p.subscribed)) {
        group.subscribing = false;
        emit({ event: 'subscribed', group: group.name, count: group.peers.length });
      }
      return;
    }
    default:
      problem(
        `${where}: unexpected ${data.type ?? '?'}${data.code ? ` ${data.code}: ${data.message}` : ''}`,
      );
  }
}

function checkOpened(group: Group): void {
  const opening = group.opening;
  if (!opening) return;
  for (let i = opening.first; i < opening.end; i++) if (!group.peers[i]?.open) return;
  group.opening = undefined;
  emit({ event: 'opened', group: group.name, count: opening.end - opening.first });
}

async function open(command: Extract<Command, { cmd: 'open' }>): Promise<void> {
  const group = groupOf(command.group);
  const first = group.peers.length;
  const gathered: Promise<string>[] = [];
  for (let i = 0; i < command.count; i++) {
    const index = first + i;
    const pc = new nodeDataChannel.PeerConnection(`${command.group}-${index}`, {
      iceServers: [],
      bindAddress: '127.0.0.1',
    });
    gathered.push(
      new Promise<string>((resolve) => {
        pc.onGatheringStateChange((state) => {
          if (state === 'complete') resolve(pc.localDescription()?.sdp ?? '');
        });
      }),
    );
    const dc = pc.createDataChannel('records', {
      protocol: command.protocol ?? 'streamanchor.v2',
    });
    const peer: Peer = {
      index,
      pc,
      dc,
      open: false,
      closing: false,
      subscribing: false,
      subscribed: false,
      lastPosition: undefined,
      next: 0,
    };
    group.peers.push(peer);
    pc.onStateChange((state) => {
      if ((state === 'failed' || state === 'closed') && !peer.closing)
        problem(`${group.name}#${index}: peer connection ${state}`);
    });
    dc.onOpen(() => {
      peer.open = true;
      checkOpened(group);
    });
    dc.onClosed(() => {
      if (!peer.closing) problem(`${group.name}#${index}: channel closed`);
    });
    dc.onMessage((message) => {
      if (typeof message === 'string') onMessage(group, peer, message);
      else problem(`${group.name}#${index}: a binary message`);
    });
  }
  const sdps = await Promise.all(gathered);
  emit({ event: 'offers', group: group.name, first, sdps });
}

function handle(command: Command): void {
  const group = groupOf(command.group);
  switch (command.cmd) {
    case 'open':
      void open(command).catch((error: unknown) => problem(`open: ${String(error)}`));
      return;
    case 'answers': {
      group.opening = { first: command.first, end: command.first + command.sdps.length };
      command.sdps.forEach((sdp, i) => {
        group.peers[command.first + i]?.pc.setRemoteDescription(sdp, 'answer');
      });
      checkOpened(group);
      return;
    }
    case 'subscribe': {
      group.subscribing = true;
      const text = JSON.stringify({
        type: 'subscribe',
        id: 's',
        topics: [{ topic: command.topic }],
      });
      for (const peer of group.peers) {
        if (peer.subscribing) continue;
        peer.subscribing = true;
        peer.dc.sendMessage(text);
      }
      if (group.peers.every((p) => p.subscribed)) {
        group.subscribing = false;
        emit({ event: 'subscribed', group: group.name, count: group.peers.length });
      }
      return;
    }
    case 'expect': {
      for (const peer of group.peers) peer.next = 0;
      group.run = {
        records: command.records,
        complete: 0,
        deliveries: 0,
        histogram: new Map(),
      };
      emit({ event: 'expecting', group: group.name });
      return;
    }
    case 'report': {
      const counts = group.peers.map((peer) => peer.next);
      emit({
        event: 'report',
        group: group.name,
        peers: group.peers.length,
        running: group.run !== undefined,
        complete: group.run?.complete ?? 0,
        least: counts.length ? Math.min(...counts) : 0,
        most: counts.length ? Math.max(...counts) : 0,
      });
      return;
    }
    case 'close': {
      for (const peer of group.peers) {
        peer.closing = true;
        try {
          peer.dc.close();
          peer.pc.close();
        } catch {}
      }
      closedPeers.push(...group.peers);
      groups.delete(group.name);
      emit({ event: 'closedGroup', group: group.name });
      return;
    }
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  try {
    handle(JSON.parse(line) as Command);
  } catch (error) {
    problem(`command: ${(error as Error).message}`);
    emit({ event: 'error', message: (error as Error).message });
  }
});
lines.on('close', () => {
  for (const group of groups.values()) {
    for (const peer of group.peers) {
      peer.closing = true;
      try {
        peer.dc.close();
        peer.pc.close();
      } catch {}
    }
  }
  nodeDataChannel.cleanup();
  closedPeers.length = 0;
  process.exit(0);
});
emit({ event: 'ready' });
