/**
 * `streamanchor subscribe`: prints a topic's records as they are acked, on any relay, from
 * a position on, and the anchoring of their batches as it changes (the SDK's
 * `session.subscribe`, `Subscription.onBatch`; docs/protocol.md §5.9).
 */
import type { Subscription, SubscriptionEnd } from '@streamanchor/client';
import { integer, parseCommandArgs, topicTarget } from '../args';
import type { Command } from '../command';
import { deliveredLine, printRecord } from '../records';
import { describeError, openSession } from '../session';
import { releaseWebRtc } from '../webrtc';

export const SUBSCRIBE_USAGE = `usage: streamanchor subscribe --url <gateway> --token <token> --topic <topic> [--after <position>] [--count <n>]

Prints, as JSON lines, first {"type":"subscribed","topic","after","head"}, then each
record of the topic as it is acked, in position order:
  {"type":"record","topic","position","recordId","subject","contentHash","acceptedAt","payload"}
and each change of the anchoring of a batch holding the topic's records (included, final,
reorged, included again), with the inclusive ranges of positions it holds (a batch line
may name positions whose records have not come yet):
  {"type":"batch","topic","positions":[[first,last],…],"anchor":{"status","batchId","merkleRoot","blockNumber",…}}
  --after  the records after this position (0: from the topic's first record); without
           it, from the next record acked
  --count  exits after this many records
Each record's contentHash is checked against its payload (a mismatch is reported on
stderr and makes the exit code 1); a pruned payload (payload retention) is null, with
"pruned":true. Runs until Ctrl-C (exit 0). When the relay or the
session ends the subscription it prints {"type":"unsubscribed","reason","after"} and
exits 1: resume with --after <after>.
The token must grant subscribing to the topic (streamanchor token --subscribe).
Environment: STREAMANCHOR_URL and STREAMANCHOR_TOKEN stand in for --url and --token.`;

export const subscribe: Command = {
  usage: SUBSCRIBE_USAGE,
  async run(argv, io) {
    const { values } = parseCommandArgs(argv, {
      url: { type: 'string' },
      token: { type: 'string' },
      topic: { type: 'string' },
      after: { type: 'string' },
      count: { type: 'string' },
    });
    if (values.help) {
      io.out(SUBSCRIBE_USAGE);
      return 0;
    }
    const { url, token, topic } = topicTarget(values, io.env);
    const after = integer(values.after, '--after', 0);
    const count = integer(values.count, '--count', 1);

    let stopped = false;
    let stop: () => void = () => {};
    io.onInterrupt(() => {
      stopped = true;
      stop();
    });

    const session = await openSession(url, token);
    try {
      let subscription: Subscription;
      try {
        subscription = await session.subscribe(topic, after === undefined ? {} : { after });
      } catch (error) {
        io.warn(`could not subscribe to ${topic}: ${describeError(error)}`);
        return 1;
      }
      stop = () => void subscription.unsubscribe().catch(() => undefined);
      if (stopped) stop();
      io.json({
        type: 'subscribed',
        topic,
        after: subscription.startedAfter,
        head: subscription.head,
      });
      // Each change of a batch's anchoring (included, final, reorged, …) as it comes.
      subscription.onBatch(({ anchor, positions }) =>
        io.json({ type: 'batch', topic, positions, anchor }),
      );

      let received = 0;
      let mismatches = 0;
      let closed: unknown;
      try {
        for await (const record of subscription) {
          if (!printRecord(io, deliveredLine(record))) mismatches += 1;
          received += 1;
          if (count !== undefined && received >= count) break;
        }
      } catch (error) {
        // The session closed: the iterator throws after the records it held.
        closed = error;
      }
      if (closed === undefined && (stopped || (count !== undefined && received >= count))) {
        await subscription.unsubscribe().catch(() => undefined);
        return mismatches > 0 ? 1 : 0;
      }
      // The relay ended the subscription, or the session closed.
      let end: SubscriptionEnd | undefined;
      try {
        end = await subscription.ended;
      } catch (error) {
        closed ??= error;
      }
      const reason =
        end?.reason ?? `session closed (${session.closeReason ?? describeError(closed)})`;
      const last = end?.after ?? subscription.position;
      io.json({ type: 'unsubscribed', topic, reason, after: last });
      io.warn(`the subscription ended: ${reason}; resume with --after ${last}`);
      return 1;
    } finally {
      await session.close().catch(() => undefined);
      releaseWebRtc();
    }
  },
};
