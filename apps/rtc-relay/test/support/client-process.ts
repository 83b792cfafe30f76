/**
 * A WebRTC test client in its own process (two node-datachannel peers in one process
 * stall under load). Reads JSON commands, one per line, on stdin; writes JSON events,
 * one per line, on stdout.
 *
 * Commands:
 *   {"cmd":"offer","label"?,"protocol"?}         → {"event":"offer","sdp"} once gathering completed
 *   {"cmd":"answer","sdp","maxMessageSize"?}     maxMessageSize rewrites the answer's a=max-message-size
 *                                                (plays a client that ignores the relay's limit)
 *   {"cmd":"send","text"}                        → {"event":"sendError","message"} if the send throws
 *   {"cmd":"publish","count","payloadBytes","topic","idPrefix","listAcks"?,"ratePerSecond"?,"stampSentAt"?}
 *                                                sends `count` publishes as fast as the channel takes them
 *                                                (or paced at ratePerSecond); their replies are counted, not
 *                                                printed (stampSentAt: each payload also carries `sentAt`,
 *                                                performance.timeOrigin + performance.now() at its send, in
 *                                                ms, for a subscriber's publish → delivered latency), and
 *                                                {"event":"published","acks","nacks","codes","retryAfterMs","elapsedMs","acked":[…],"latencyMs","cpuMs"}
 *                                                (retryAfterMs: the largest hint of its rate_limited nacks, or null;
 *                                                latencyMs: {p50,p99,max} from each send to its answer;
 *                                                cpuMs: this process's CPU time, all threads, during the run)
 *                                                follows once each got its answer
 *   {"cmd":"close"}                              closes the channel and the peer connection
 * Events: open, closed (the data channel), state (peer connection), message {"data"}, error.
 */
import { createInterface } from 'node:readline';
import nodeDataChannel, {
  type DataChannel,
  type LogLevel,
  type PeerConnection,
} from 'node-datachannel';

type Command =
  | { cmd: 'offer'; label?: string; protocol?: string }
  | { cmd: 'answer'; sdp: string; maxMessageSize?: number }
  | { cmd: 'send'; text: string }
  | {
      cmd: 'publish';
      count: number;
      payloadBytes: number;
      topic: string;
      idPrefix: string;
      listAcks?: boolean;
      ratePerSecond?: number;
      stampSentAt?: boolean;
    }
  | { cmd: 'close' };

interface PublishRun {
  prefix: string;
  total: number;
  answered: number;
  acks: number;
  nacks: number;
  codes: Record<string, number>;
  retryAfterMs: number | null;
  acked: { id: string; recordId: string; contentHash: string }[] | undefined;
  startedAt: number;
  /** performance.now() at each publish's send, by its index. */
  sentAt: Float64Array;
  latencies: Float64Array;
  cpu: NodeJS.CpuUsage;
}

const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

let pc: PeerConnection | undefined;
let dc: DataChannel | undefined;
let run: PublishRun | undefined;
const waiters: (() => void)[] = [];

function onMessage(message: string | Buffer | ArrayBuffer): void {
  if (typeof message !== 'string') {
    emit({ event: 'binary' });
    return;
  }
  if (run && message.includes(`"id":"${run.prefix}`)) {
    const data = JSON.parse(message) as Answer & { acks?: Answer[] };
    // Protocol v2 bundles consecutive acks in one `acks` message.
    if (data.type === 'acks') for (const ack of data.acks ?? []) answered({ ...ack, type: 'ack' });
    else answered(data);
    return;
  }
  emit({ event: 'message', data: JSON.parse(message) });
}

interface Answer {
  type: string;
  id: string;
  recordId: string;
  contentHash: string;
  code?: string;
  retryAfterMs?: number;
}

/** One publish of the current run answered (an ack or a nack). */
function answered(data: Answer): void {
  if (!run) return;
  const index = Number(data.id.slice(run.prefix.length));
  if (index >= 0 && index < run.total)
    run.latencies[run.answered] = performance.now() - run.sentAt[index]!;
  run.answered += 1;
  if (data.type === 'ack') {
    run.acks += 1;
    run.acked?.push({ id: data.id, recordId: data.recordId, contentHash: data.contentHash });
  } else {
    run.nacks += 1;
    run.codes[data.code ?? '?'] = (run.codes[data.code ?? '?'] ?? 0) + 1;
    if (data.retryAfterMs !== undefined)
      run.retryAfterMs = Math.max(run.retryAfterMs ?? 0, data.retryAfterMs);
  }
  if (run.answered === run.total) {
    const { acks, nacks, codes, retryAfterMs, acked, startedAt, latencies, cpu } = run;
    const used = process.cpuUsage(cpu);
    run = undefined;
    latencies.sort();
    const rank = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil(p * latencies.length) - 1))]!;
    const latencyMs = { p50: rank(0.5), p99: rank(0.99), max: rank(1) };
    emit({
      event: 'published',
      acks,
      nacks,
      codes,
      retryAfterMs,
      elapsedMs: performance.now() - startedAt,
      acked,
      latencyMs,
      cpuMs: (used.user + used.system) / 1000,
    });
  }
}

async function publish(command: Extract<Command, { cmd: 'publish' }>): Promise<void> {
  const channel = dc;
  if (!channel) {
    emit({ event: 'error', message: 'no channel' });
    return;
  }
  run = {
    prefix: command.idPrefix,
    total: command.count,
    answered: 0,
    acks: 0,
    nacks: 0,
    codes: {},
    retryAfterMs: null,
    acked: command.listAcks ? [] : undefined,
    startedAt: performance.now(),
    sentAt: new Float64Array(command.count),
    latencies: new Float64Array(command.count),
    cpu: process.cpuUsage(),
  };
  const { sentAt, startedAt } = run;
  const filler = 'x'.repeat(Math.max(0, command.payloadBytes - 20));
  const rate = command.ratePerSecond ?? 0;
  const stamp = command.stampSentAt === true;
  channel.setBufferedAmountLowThreshold(256 * 1024);
  for (let i = 0; i < command.count; i++) {
    if (rate > 0) {
      // Paced: publish i is due at startedAt + i / rate; wait for it (timer granularity
      // sends a few at once).
      while ((performance.now() - startedAt) * rate < i * 1000) {
        await new Promise<void>((resolve) => setTimeout(resolve, 1));
      }
    }
    while (channel.bufferedAmount() > 1024 * 1024) {
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
    sentAt[i] = performance.now();
    const payload = stamp
      ? { n: i, sentAt: performance.timeOrigin + sentAt[i]!, fill: filler }
      : { n: i, fill: filler };
    channel.sendMessage(
      JSON.stringify({
        type: 'publish',
        id: `${command.idPrefix}${i}`,
        topic: command.topic,
        payload,
      }),
    );
  }
}

function handle(command: Command): void {
  switch (command.cmd) {
    case 'offer': {
      pc = new nodeDataChannel.PeerConnection('client', {
        iceServers: [],
        bindAddress: '127.0.0.1',
      });
      const peer = pc;
      peer.onStateChange((state) => emit({ event: 'state', state }));
      peer.onGatheringStateChange((state) => {
        if (state === 'complete') emit({ event: 'offer', sdp: peer.localDescription()?.sdp });
      });
      dc = peer.createDataChannel(command.label ?? 'records', {
        protocol: command.protocol ?? 'streamanchor.v1',
      });
      dc.onOpen(() => emit({ event: 'open' }));
      dc.onClosed(() => emit({ event: 'closed' }));
      dc.onError((error) => emit({ event: 'error', message: error }));
      dc.onMessage(onMessage);
      dc.onBufferedAmountLow(() => {
        for (const wake of waiters.splice(0)) wake();
      });
      return;
    }
    case 'answer': {
      const sdp = command.maxMessageSize
        ? command.sdp.replace(
            /a=max-message-size:\d+/,
            `a=max-message-size:${command.maxMessageSize}`,
          )
        : command.sdp;
      pc?.setRemoteDescription(sdp, 'answer');
      return;
    }
    case 'send':
      try {
        dc?.sendMessage(command.text);
      } catch (error) {
        emit({ event: 'sendError', message: (error as Error).message });
      }
      return;
    case 'publish':
      void publish(command).catch((error: unknown) =>
        emit({ event: 'error', message: String(error) }),
      );
      return;
    case 'close':
      try {
        dc?.close();
        pc?.close();
      } catch {}
      return;
  }
}

if (process.env.NDC_LOG) {
  nodeDataChannel.initLogger(process.env.NDC_LOG as LogLevel, (level, message) =>
    process.stderr.write(`[client ${level}] ${message}\n`),
  );
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  try {
    handle(JSON.parse(line) as Command);
  } catch (error) {
    emit({ event: 'error', message: (error as Error).message });
  }
});
lines.on('close', () => {
  try {
    dc?.close();
    pc?.close();
  } catch {}
  nodeDataChannel.cleanup();
  process.exit(0);
});
emit({ event: 'ready' });
