/**
 * `streamanchor subscribe`: a topic's records as they are acked, on any relay (the SDK's
 * `session.subscribe`, `Subscription.onBatch`; docs/protocol.md §5.9), whatever happens: from
 * `--after`, its stored records over HTTP history first (§3.8, page by page), then the live
 * subscription from the last one; and again from the last record printed whenever the relay
 * ends the subscription (`history_unavailable`) or the session drops. (`follow` is the
 * chain-first follower, commands/follow.ts.)
 */
import { setMaxListeners } from 'node:events';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import {
  problemFromResponse,
  SessionClosedError,
  type StreamAnchorSession,
  type Subscription,
  type SubscriptionEnd,
  SubscriptionError,
} from '@streamanchor/client';
import { TopicRecordsResponse } from '@streamanchor/protocol';
import { CommandError, integer, parseCommandArgs, topicTarget } from '../args';
import type { Command, Io } from '../command';
import { OpenPositions } from '../open-positions';
import { deliveredLine, historyLine, printRecord, type RecordLine } from '../records';
import { connectSession, describeError, isPermanent, nextBackoff } from '../session';
import { sleep } from '../sleep';
import { releaseWebRtc } from '../webrtc';

export const SUBSCRIBE_USAGE = `usage: streamanchor subscribe --url <gateway> --token <token> --topic <topic> [--after <position>] [--count <n>] [--no-live]

Prints, as JSON lines, the topic's records in position order:
  {"type":"record","topic","position","recordId","subject","contentHash","acceptedAt","payload"}
{"type":"subscribed","topic","after","head"} each time it goes live, and each change of the
anchoring of a batch holding the records it printed (included, final, reorged, included
again), after those records, with the inclusive ranges of positions the batch holds:
  {"type":"batch","topic","positions":[[first,last],…],"anchor":{"status","batchId","merkleRoot","blockNumber",…}}
  --after    the records after this position (0: from the topic's first record): first the
             stored ones, read over HTTP (GET /v1/topics/<topic>/records; these lines also
             carry "batchId", null until batched), then live from the last of them. Without
             it, live from the next record acked
  --count    exits after this many records
  --no-live  exits once caught up with the stored records (no WebRTC session; needs --after
             or reads from position 0)
It resumes on its own: when the relay ends the subscription (it prints
{"type":"unsubscribed","reason","after"}) or the session drops, it reads history again from
the last record printed and subscribes again (a dropped session after 1, 2, 4 … 15 s),
asking the relay for the anchoring changes it kept of the batches of records printed but not
yet final (each batch line is printed once).
Each record's contentHash is checked against its payload (a mismatch is reported on stderr
and makes the exit code 1); a pruned payload (payload retention) is null, with
"pruned":true. Runs until Ctrl-C (exit 0). Exit code 1 when the gateway refuses (e.g. 403
topic_not_allowed: the token must grant subscribing to the topic, streamanchor token
--subscribe) or a payload does not match, 2 on bad usage. To check what you are served
against the chain, see \`streamanchor follow --topic\`.
Environment: STREAMANCHOR_URL and STREAMANCHOR_TOKEN stand in for --url and --token.`;

/** Records asked for per history page (the gateway's most). */
const PAGE_RECORDS = 1000;
/** Batch lines remembered against reprinting replayed ones (then forgotten at once). */
const MAX_REMEMBERED_BATCHES = 10_000;

const pageChecker = TypeCompiler.Compile(TopicRecordsResponse);

/**
 * Where the subscriber stands: the last position printed (undefined: live from the next
 * record, until the first subscription says where that is), how many, and content mismatches.
 */
interface Progress {
  last: number | undefined;
  printed: number;
  mismatches: number;
  /** Printed positions whose batch was not seen final: a resume asks their anchoring again. */
  open: OpenPositions;
  /** Batch lines printed (`batchId:revision:status`), so a replayed change is not printed twice. */
  printedBatches: Set<string>;
}

type LiveOutcome = 'done' | 'stopped' | { resume: string; backoff: boolean };

export const subscribe: Command = {
  usage: SUBSCRIBE_USAGE,
  async run(argv, io) {
    const { values } = parseCommandArgs(argv, {
      url: { type: 'string' },
      token: { type: 'string' },
      topic: { type: 'string' },
      after: { type: 'string' },
      count: { type: 'string' },
      'no-live': { type: 'boolean' },
    });
    if (values.help) {
      io.out(SUBSCRIBE_USAGE);
      return 0;
    }
    const { url, token, topic } = topicTarget(values, io.env);
    const count = integer(values.count, '--count', 1);

    const stop = new AbortController();
    setMaxListeners(0, stop.signal);
    let stopLive: () => void = () => {};
    io.onInterrupt(() => {
      stop.abort();
      stopLive();
    });

    const progress: Progress = {
      // --no-live without --after: the whole stored history.
      last: integer(values.after, '--after', 0) ?? (values['no-live'] ? 0 : undefined),
      printed: 0,
      mismatches: 0,
      open: new OpenPositions(),
      printedBatches: new Set(),
    };
    const done = () => count !== undefined && progress.printed >= count;
    const print = (record: { line: RecordLine; contentMatches: boolean | null }) => {
      if (!printRecord(io, record)) progress.mismatches += 1;
      progress.last = record.line.position;
      progress.open.add(record.line.position);
      progress.printed += 1;
    };

    let usedWebRtc = false;
    let backoffMs = 0;
    try {
      for (;;) {
        if (progress.last !== undefined) {
          await readHistory({ url, token, topic, io, progress, print, done, signal: stop.signal });
        }
        if (stop.signal.aborted || done() || values['no-live']) break;
        usedWebRtc = true;
        const outcome = await goLive({
          url,
          token,
          topic,
          io,
          progress,
          print,
          done,
          signal: stop.signal,
          onStop: (handler) => {
            stopLive = handler;
          },
        });
        stopLive = () => {};
        if (outcome === 'done' || outcome === 'stopped' || stop.signal.aborted) break;
        backoffMs = outcome.backoff ? nextBackoff(backoffMs) : 0;
        io.warn(
          `${outcome.resume}; resuming ${progress.last === undefined ? 'from the next record' : `after position ${progress.last}`}${backoffMs ? ` in ${backoffMs / 1000} s` : ''}`,
        );
        await sleep(backoffMs, stop.signal);
      }
    } finally {
      if (usedWebRtc) releaseWebRtc();
    }
    return progress.mismatches > 0 ? 1 : 0;
  },
};

interface Context {
  url: string;
  token: string;
  topic: string;
  io: Io;
  progress: Progress;
  print(record: { line: RecordLine; contentMatches: boolean | null }): void;
  done(): boolean;
  signal: AbortSignal;
}

/** Prints the stored records after `progress.last`, page by page, until caught up (or done). */
async function readHistory(context: Context): Promise<void> {
  const { topic, progress, signal } = context;
  let after = progress.last ?? 0;
  for (;;) {
    const page = await fetchPage(context, after);
    if (page === undefined) return; // interrupted
    for (const record of page.records) {
      if (record.position <= (progress.last ?? 0)) continue;
      context.print(historyLine(topic, record));
      if (context.done() || signal.aborted) return;
    }
    if (page.next === null || page.next <= after) return;
    after = page.next;
  }
}

/**
 * GET one history page (after `after`). Waits and asks again on 429, 503 and network
 * failures (Retry-After, else a growing pause); a CommandError for any other refusal;
 * undefined when interrupted.
 */
async function fetchPage(
  { url, token, topic, io, signal }: Context,
  after: number,
): Promise<TopicRecordsResponse | undefined> {
  const pageUrl = `${url.replace(/\/+$/, '')}/v1/topics/${encodeURIComponent(topic)}/records?after=${after}&limit=${PAGE_RECORDS}`;
  let backoffMs = 0;
  for (;;) {
    let response: Response;
    try {
      response = await fetch(pageUrl, {
        headers: {
          Authorization: `Bearer ${token}`,
          Accept: 'application/json, application/problem+json',
        },
        signal,
      });
    } catch (error) {
      if (signal.aborted) return undefined;
      backoffMs = nextBackoff(backoffMs);
      io.warn(
        `history: could not reach ${url} (${describeError(error)}); again in ${backoffMs / 1000} s`,
      );
      await sleep(backoffMs, signal);
      continue;
    }
    if (response.status === 200) {
      const body: unknown = await response.json().catch(() => undefined);
      if (!pageChecker.Check(body)) {
        const first = pageChecker.Errors(body).First();
        throw new CommandError(
          `the gateway answered ${pageUrl} with something that is not a history page`,
          first ? `${first.path || '(root)'}: ${first.message}` : undefined,
        );
      }
      return body;
    }
    const retryAfterS = Number(response.headers.get('retry-after'));
    const problem = await problemFromResponse(response);
    if (isPermanent(problem)) {
      throw new CommandError(`could not read the history of ${topic}: ${describeError(problem)}`);
    }
    backoffMs =
      Number.isFinite(retryAfterS) && retryAfterS > 0 ? retryAfterS * 1000 : nextBackoff(backoffMs);
    io.warn(`history: ${describeError(problem)}; again in ${backoffMs / 1000} s`);
    await sleep(backoffMs, signal);
    if (signal.aborted) return undefined;
  }
}

/** One live subscription from `progress.last`: prints records and batch lines until it ends. */
async function goLive(
  context: Context & { onStop(handler: () => void): void },
): Promise<LiveOutcome> {
  const { url, token, topic, io, progress, signal } = context;
  let session: StreamAnchorSession;
  try {
    session = await connectSession(url, token);
  } catch (error) {
    if (isPermanent(error)) {
      throw new CommandError(`could not open a session at ${url}: ${describeError(error)}`);
    }
    return { resume: `could not open a session (${describeError(error)})`, backoff: true };
  }
  // The relay is draining (docs/protocol.md §5.4.1): leave it now and resume at once on
  // another relay, from the last position printed; no back-off, nothing is lost.
  const draining = {
    resume: 'the relay is draining (relay_draining)',
    backoff: false,
  } as const satisfies LiveOutcome;
  const offDraining = session.onDraining(() => void session.close().catch(() => undefined));
  try {
    let subscription: Subscription;
    try {
      subscription = await session.subscribe(
        topic,
        progress.last === undefined
          ? {}
          : { after: progress.last, anchoringAfter: progress.open.anchoringAfter(progress.last) },
      );
    } catch (error) {
      if (session.draining) return draining;
      if (error instanceof SubscriptionError && error.code !== 'rate_limited') {
        throw new CommandError(`could not subscribe to ${topic}: ${describeError(error)}`);
      }
      return { resume: `could not subscribe (${describeError(error)})`, backoff: true };
    }
    progress.last ??= subscription.startedAfter;
    context.onStop(() => void subscription.unsubscribe().catch(() => undefined));
    if (signal.aborted) void subscription.unsubscribe().catch(() => undefined);
    io.json({
      type: 'subscribed',
      topic,
      after: subscription.startedAfter,
      head: subscription.head,
    });
    subscription.onBatch(({ anchor, positions }) => {
      const key = `${anchor.batchId}:${anchor.revision}:${anchor.status}`;
      if (progress.printedBatches.has(key)) return; // replayed on resume: printed already
      if (progress.printedBatches.size >= MAX_REMEMBERED_BATCHES) progress.printedBatches.clear();
      progress.printedBatches.add(key);
      if (anchor.status === 'final') progress.open.settle(positions);
      io.json({ type: 'batch', topic, positions, anchor });
    });
    try {
      for await (const record of subscription) {
        context.print(deliveredLine(record));
        if (context.done()) {
          await subscription.unsubscribe().catch(() => undefined);
          return 'done';
        }
      }
    } catch (error) {
      if (!(error instanceof SessionClosedError)) throw error;
    }
    if (signal.aborted) return 'stopped';
    if (session.draining) return draining;
    let end: SubscriptionEnd | undefined;
    try {
      end = await subscription.ended;
    } catch {
      // The session closed.
    }
    if (end) {
      io.json({ type: 'unsubscribed', topic, reason: end.reason, after: end.after });
      return { resume: `the relay ended the subscription (${end.reason})`, backoff: false };
    }
    return { resume: `the session closed (${session.closeReason})`, backoff: true };
  } finally {
    offDraining();
    await session.close().catch(() => undefined);
  }
}
