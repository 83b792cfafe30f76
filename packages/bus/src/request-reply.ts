import { type QueueEvents, UnrecoverableError } from 'bullmq';
import type { JobData, JobName, JobResult } from './queues';
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

/**
 * Adds a job and waits for its result: the request/reply pattern over BullMQ.
 * `events` must be ready (`await events.waitUntilReady()`) before the call, or the
 * completion can be missed. On timeout the job is removed so a late worker skips it.
 */
export async function requestReply<N extends JobName<'relayControl'>>(
  queue: TypedQueue<'relayControl'>,
  events: QueueEvents,
  name: N,
  data: JobData<'relayControl', N>,
  { jobId, timeoutMs }: { jobId: string; timeoutMs: number },
): Promise<JobResult<'relayControl', N>> {
  const job = await queue.add(name, data as JobData<'relayControl'>, {
    jobId,
    attempts: 1,
    removeOnComplete: { age: 60 },
    removeOnFail: { age: 600 },
  });
  try {
    return (await job.waitUntilFinished(events, timeoutMs)) as JobResult<'relayControl', N>;
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
