import { BaseError, walkError } from '@streamanchor/protocol';
import { type Queue, type QueueEvents, UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobData, JobName, JobResult, QueueKind } from './queues';
import type { TypedQueue } from './typed';

/** The remote side did not finish the job before the deadline. */
export class RequestTimeoutError extends BaseError<{ jobName: string; timeoutMs: number }> {
  override name = 'RequestTimeoutError';
  constructor(
    readonly jobName: string,
    readonly timeoutMs: number,
  ) {
    super(`${jobName}: no reply within ${timeoutMs} ms`, { details: { jobName, timeoutMs } });
  }
}

/**
 * A refusal the remote side wants the caller to see, with a machine-readable code (the
 * relay's are RELAY_ERRORS in @streamanchor/protocol). Thrown by a processor; it fails the
 * job without retries and crosses Redis as JSON. It must extend BullMQ's
 * UnrecoverableError, so it has the shape of the one error base (`BaseError`:
 * `shortMessage`, `details`, `walk()`) without extending it.
 */
export class RemoteError extends UnrecoverableError {
  override name = 'RemoteError';
  readonly shortMessage: string;
  readonly details: { code: string; detail: string };
  constructor(
    readonly code: string,
    readonly detail: string,
  ) {
    super(JSON.stringify({ code, detail }));
    this.shortMessage = detail;
    this.details = { code, detail };
  }

  /** Follows `cause` like `BaseError.walk` (a rebuilt RemoteError has none). */
  walk(predicate?: (error: unknown) => boolean): unknown {
    return walkError(this, predicate);
  }

  /** Rebuilds a RemoteError from a job's failedReason, or undefined if it was some other failure. */
  static fromFailedReason(reason: string): RemoteError | undefined {
    try {
      const parsed = JSON.parse(reason) as { code?: unknown; detail?: unknown };
      if (typeof parsed.code === 'string' && typeof parsed.detail === 'string')
        return new RemoteError(parsed.code, parsed.detail);
    } catch {}
    return undefined;
  }
}

/** How long a finished request's job stays in Redis (seconds): long enough for the waiter. */
const KEEP_COMPLETED_SECONDS = 60;
const KEEP_FAILED_SECONDS = 600;

/**
 * Empties a finished job's payload and result, if the job is still there (never recreates
 * a removed one): the job stays for its waiters' "already finished?" check, but no request
 * body (an SDP offer, say) or answer lingers in Redis for KEEP_*_SECONDS.
 * Input:
 *   KEYS[1]  the job's hash
 * Output: 1 if trimmed, 0 if the job is gone
 */
const TRIM_JOB_1 = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'data', '{}')
if redis.call('HEXISTS', KEYS[1], 'returnvalue') == 1 then
  redis.call('HSET', KEYS[1], 'returnvalue', 'null')
end
return 1
`;

/**
 * Sends TRIM_JOB_1 for a finished job without waiting for it: the caller's reply does not
 * wait one more Redis round trip, and since the command is sent before this returns, any
 * later command on the same connection runs after it.
 */
function trimFinishedJob(client: Redis, queue: Pick<Queue, 'toKey'>, jobId: string): void {
  client.eval(TRIM_JOB_1, 1, queue.toKey(jobId)).catch(() => {});
}

export interface RequestReplyOptions {
  jobId: string;
  timeoutMs: number;
}

/**
 * Adds a job and waits for its result: the request/reply pattern over BullMQ, for any
 * queue of the map (`relayControl`, `indexerLookup`, …).
 * `events` must be ready (`await events.waitUntilReady()`) before the call, or the
 * completion can be missed. On timeout the job is removed so a late worker skips it.
 * Finished jobs are removed by age, so nothing lingers (not at once: a job removed the
 * moment it completes can make the waiter's own "already finished?" check fail); their data
 * and result are emptied as soon as the waiter has read the result (TRIM_JOB_1).
 */
export async function requestReply<Q extends QueueKind, N extends JobName<Q>>(
  queue: TypedQueue<Q>,
  events: QueueEvents,
  name: N,
  data: JobData<Q, N>,
  { jobId, timeoutMs }: RequestReplyOptions,
): Promise<JobResult<Q, N>> {
  // BullMQ's connection is the ioredis client the queue was built with (BusDeps.connection).
  const client = (await queue.client) as unknown as Redis;
  // BullMQ's add() types name and data through conditional types TypeScript cannot resolve
  // for a generic Q; the signature above already ties them to the queue map.
  const job = await queue.add(name as never, data as never, {
    jobId,
    attempts: 1,
    removeOnComplete: { age: KEEP_COMPLETED_SECONDS },
    removeOnFail: { age: KEEP_FAILED_SECONDS },
  });
  try {
    const result = (await job.waitUntilFinished(events, timeoutMs)) as JobResult<Q, N>;
    trimFinishedJob(client, queue, jobId);
    return result;
  } catch (error) {
    const message = (error as Error).message ?? '';
    const remote = RemoteError.fromFailedReason(message);
    if (remote) {
      trimFinishedJob(client, queue, jobId);
      throw remote;
    }
    if (/timed out/i.test(message)) {
      await job.remove().catch(() => {});
      throw new RequestTimeoutError(name, timeoutMs);
    }
    throw error;
  }
}
