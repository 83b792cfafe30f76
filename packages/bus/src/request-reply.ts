import { type QueueEvents, UnrecoverableError } from 'bullmq';
import type { JobData, JobName, JobResult, QueueKind } from './queues';
import type { TypedQueue } from './typed';

/** The remote side did not finish the job before the deadline. */
export class RequestTimeoutError extends Error {
  override name = 'RequestTimeoutError';
  constructor(
    readonly jobName: string,
    readonly timeoutMs: number,
  ) {
    super(`${jobName}: no reply within ${timeoutMs} ms`);
  }
}

/**
 * A refusal the remote side wants the caller to see, with a machine-readable code.
 * Thrown by a processor; it fails the job without retries and crosses Redis as JSON.
 */
export class RemoteError extends UnrecoverableError {
  override name = 'RemoteError';
  constructor(
    readonly code: string,
    readonly detail: string,
  ) {
    super(JSON.stringify({ code, detail }));
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
 * moment it completes can make the waiter's own "already finished?" check fail).
 */
export async function requestReply<Q extends QueueKind, N extends JobName<Q>>(
  queue: TypedQueue<Q>,
  events: QueueEvents,
  name: N,
  data: JobData<Q, N>,
  { jobId, timeoutMs }: RequestReplyOptions,
): Promise<JobResult<Q, N>> {
  // BullMQ's add() types name and data through conditional types TypeScript cannot resolve
  // for a generic Q; the signature above already ties them to the queue map.
  const job = await queue.add(name as never, data as never, {
    jobId,
    attempts: 1,
    removeOnComplete: { age: KEEP_COMPLETED_SECONDS },
    removeOnFail: { age: KEEP_FAILED_SECONDS },
  });
  try {
    return (await job.waitUntilFinished(events, timeoutMs)) as JobResult<Q, N>;
  } catch (error) {
    const message = (error as Error).message ?? '';
    const remote = RemoteError.fromFailedReason(message);
    if (remote) throw remote;
    if (/timed out/i.test(message)) {
      await job.remove().catch(() => {});
      throw new RequestTimeoutError(name, timeoutMs);
    }
    throw error;
  }
}
