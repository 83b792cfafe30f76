import {
  type Job,
  Queue,
  QueueEvents,
  type QueueOptions,
  Worker,
  type WorkerOptions,
} from 'bullmq';
import type { Redis } from 'ioredis';
import type { Keys } from './keys';
import { type JobData, type JobName, type JobResult, QUEUES, type QueueKind } from './queues';

export interface BusDeps {
  /** Used for queues; workers and queue events duplicate it for their blocking reads. */
  connection: Redis;
  keys: Keys;
}

export type TypedQueue<Q extends QueueKind> = Queue<JobData<Q>, JobResult<Q>, JobName<Q>>;
export type TypedJob<Q extends QueueKind> = Job<JobData<Q>, JobResult<Q>, JobName<Q>>;
export type TypedWorker<Q extends QueueKind> = Worker<JobData<Q>, JobResult<Q>, JobName<Q>>;

export function queueName<Q extends QueueKind>(kind: Q, relayId?: string): string {
  const { name } = QUEUES[kind] as { name: (relayId: string) => string };
  if (name.length > 0 && !relayId) throw new Error(`queue ${kind} needs a relay id`);
  return name(relayId ?? '');
}

export function createQueue<Q extends QueueKind>(
  deps: BusDeps,
  kind: Q,
  relayId?: string,
  options: Partial<QueueOptions> = {},
): TypedQueue<Q> {
  return new Queue(queueName(kind, relayId), {
    connection: deps.connection,
    prefix: deps.keys.bull,
    ...options,
  });
}

export function createWorker<Q extends QueueKind>(
  deps: BusDeps,
  kind: Q,
  relayId: string | undefined,
  processor: (job: TypedJob<Q>) => Promise<JobResult<Q>>,
  options: Partial<WorkerOptions> = {},
): TypedWorker<Q> {
  const connection = deps.connection.duplicate({ maxRetriesPerRequest: null });
  const worker: TypedWorker<Q> = new Worker(queueName(kind, relayId), processor, {
    connection,
    prefix: deps.keys.bull,
    ...options,
  });
  // BullMQ treats a connection passed in as shared and never closes it: close our duplicate.
  worker.on('closed', () => connection.disconnect());
  return worker;
}

export function createQueueEvents(deps: BusDeps, kind: QueueKind, relayId?: string): QueueEvents {
  const connection = deps.connection.duplicate({ maxRetriesPerRequest: null });
  const events = new QueueEvents(queueName(kind, relayId), { connection, prefix: deps.keys.bull });
  // QueueEvents duplicates the connection it is given and closes only its own copy: close ours too.
  const close = events.close.bind(events);
  events.close = async () => {
    try {
      await close();
    } finally {
      connection.disconnect();
    }
  };
  return events;
}
