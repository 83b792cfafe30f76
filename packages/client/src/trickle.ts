import { SessionRequestError } from './errors';
import { type FetchLike, patchCandidates } from './signaling';

/** Candidates gathered within this long of each other go in one PATCH. */
export const TRICKLE_BATCH_MS = 10;

/** How a trickle ended. */
export type TrickleOutcome =
  /** Every candidate and a=end-of-candidates were taken. */
  | 'complete'
  /** The gateway takes no PATCH (405): nothing more is sent. */
  | 'unsupported'
  /** A PATCH was refused or failed: nothing more is sent. */
  | 'failed'
  /** Stopped before gathering completed (the session failed or closed, or the timeout). */
  | 'stopped';

export interface TrickleTarget {
  /** The session URL (Location of the 201). */
  url: string;
  token: string;
  /** The 201's ETag (If-Match); `*` is sent without one. */
  etag: string | null;
  /** The offer that was POSTed: its candidates are not sent again; its ICE credentials and mid head each fragment. */
  offerSdp: string;
  fetch: FetchLike;
  /** Stop listening for candidates this long after start (gathering that never completes). */
  timeoutMs: number;
}

export interface Trickler {
  /** Sends what was gathered since the offer, then each new batch, then a=end-of-candidates. */
  start(target: TrickleTarget): void;
  /** Stops listening and sending (what is in flight completes). */
  stop(): void;
  readonly outcome: Promise<TrickleOutcome>;
  /** Candidates PATCHed so far. */
  readonly sent: number;
}

/**
 * Collects a peer connection's ICE candidates from now on (create it before the offer: a
 * polyfill may gather as soon as the channel exists) and, once started with the session's
 * URL, PATCHes them as `application/trickle-ice-sdpfrag` fragments (RFC 8840), one at a time,
 * batching candidates that come within TRICKLE_BATCH_MS, the last one with
 * `a=end-of-candidates` (docs/protocol.md §3.1.2).
 */
export function createTrickler(pc: RTCPeerConnection): Trickler {
  const pending: string[] = [];
  let gathered = false;
  let target: TrickleTarget | undefined;
  let head = '';
  let already = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let deadline: ReturnType<typeof setTimeout> | undefined;
  let sending: Promise<void> = Promise.resolve();
  let finished = false;
  let sent = 0;
  let resolveOutcome!: (outcome: TrickleOutcome) => void;
  const outcome = new Promise<TrickleOutcome>((resolve) => {
    resolveOutcome = resolve;
  });

  const finish = (result: TrickleOutcome) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    clearTimeout(deadline);
    pc.removeEventListener('icecandidate', onCandidate);
    pc.removeEventListener('icegatheringstatechange', onGatheringState);
    resolveOutcome(result);
  };
  const schedule = () => {
    if (!target || finished || timer !== undefined) return;
    if (pending.length === 0 && !gathered) return;
    timer = setTimeout(flush, TRICKLE_BATCH_MS);
  };
  const onCandidate = (event: RTCPeerConnectionIceEvent) => {
    const line = event.candidate?.candidate;
    // null (or, in some browsers, an empty candidate) marks the end of gathering.
    if (!line) gathered = true;
    else pending.push(line.startsWith('a=') ? line.slice(2) : line);
    schedule();
  };
  const onGatheringState = () => {
    if (pc.iceGatheringState !== 'complete') return;
    gathered = true;
    schedule();
  };
  pc.addEventListener('icecandidate', onCandidate);
  pc.addEventListener('icegatheringstatechange', onGatheringState);

  function flush(): void {
    timer = undefined;
    if (!target || finished) return;
    const batch = pending.splice(0).filter((line) => !already.has(line));
    for (const line of batch) already.add(line);
    const end = gathered;
    if (batch.length === 0 && !end) return;
    const body = `${head}${batch.map((line) => `a=${line}\r\n`).join('')}${end ? 'a=end-of-candidates\r\n' : ''}`;
    const to = target;
    sending = sending.then(async () => {
      if (finished) return;
      try {
        to.etag = await patchCandidates({ ...to, body });
        sent += batch.length;
        if (end) finish('complete');
      } catch (error) {
        const status = error instanceof SessionRequestError ? error.status : 0;
        finish(status === 405 ? 'unsupported' : 'failed');
      }
    });
    // An end seen now is sent with this batch; more candidates after it are not expected.
    if (end) pc.removeEventListener('icecandidate', onCandidate);
  }

  return {
    start(given) {
      if (finished || target) return;
      target = { ...given };
      head = fragmentHead(given.offerSdp);
      already = new Set(candidateLines(given.offerSdp));
      deadline = setTimeout(() => finish('stopped'), given.timeoutMs);
      schedule();
    },
    stop() {
      finish('stopped');
    },
    outcome,
    get sent() {
      return sent;
    },
  };
}

/** The fragment's first lines: the offer's ICE credentials, its data m= line and mid (RFC 8840 §4.4). */
function fragmentHead(offerSdp: string): string {
  const lines = offerSdp.split(/\r?\n/);
  const ufrag = lines.find((line) => line.startsWith('a=ice-ufrag:'));
  const pwd = lines.find((line) => line.startsWith('a=ice-pwd:'));
  const start = lines.findIndex((line) => line.startsWith('m=application '));
  const section = start >= 0 ? lines.slice(start + 1) : [];
  const end = section.findIndex((line) => line.startsWith('m='));
  const mid = (end >= 0 ? section.slice(0, end) : section).find((line) =>
    line.startsWith('a=mid:'),
  );
  return [
    ...(ufrag && pwd ? [ufrag, pwd] : []),
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    mid ?? 'a=mid:0',
    '',
  ].join('\r\n');
}

function candidateLines(sdp: string): string[] {
  return sdp
    .split(/\r?\n/)
    .filter((line) => line.startsWith('a=candidate:'))
    .map((line) => line.slice(2));
}
