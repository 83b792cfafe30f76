import type { AcceptedRecord } from '@streamanchor/protocol';
import { Job, type JobsOptions } from 'bullmq';
import type { ChainableCommander, Redis } from 'ioredis';
import type { Keys } from './keys';
import { jobIds } from './queues';
import type { TypedQueue } from './typed';

/**
 * Fans one group of records out to their topics' streams, once per job. Runs in the same
 * MULTI as the job's add, so a group is either queued for storage and fanned out, or
 * neither: a subscriber never sees a record that was not queued, nor misses one that was.
 *
 * KEYS[1]     the job's positions key (`keys.positions(jobId)`)
 * KEYS[2..n]  the stream of each distinct topic of the group (`keys.topicStream(topic)`)
 * ARGV[1]     approximate most entries a stream keeps (`XADD … MAXLEN ~`)
 * ARGV[2]     seconds the positions key lives (the writer deletes it once the job is stored)
 * ARGV[3..]   per record, in order: the KEYS index of its topic's stream, then its entry
 *             (`streamEntry`)
 *
 * Each record is added with id `0-*`, so its position is the stream's own counter: the
 * topic's positions are 1, 2, 3… in the order the groups were fanned out, whichever relay
 * fanned them out. Returns the positions, comma-separated in record order (the digits Redis
 * printed, so no precision is lost). A job fanned out before (a retried add whose reply was
 * lost) is not fanned out again: its stored positions are returned.
 */
export const FANOUT_LUA = `
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
local positions = {}
local n = (#ARGV - 2) / 2
for i = 1, n do
  local stream = KEYS[tonumber(ARGV[1 + 2 * i])]
  local id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[1], '0-*', 'r', ARGV[2 + 2 * i])
  positions[i] = string.sub(id, 3)
end
local joined = table.concat(positions, ',')
redis.call('SET', KEYS[1], joined, 'EX', ARGV[2])
return joined
`;

/** The field of a topic stream's entry that holds the record (`streamEntry`). */
export const STREAM_FIELD = 'r';

/** How long a job's positions key lives if the writer never stores the job (30 days). */
export const POSITIONS_TTL_S = 30 * 24 * 3600;

const COMMAND = 'streamanchorFanout';

type FanoutCommander = ChainableCommander & {
  [COMMAND](numKeys: number, ...keysAndArgs: (string | number)[]): ChainableCommander;
};

/**
 * A record as subscribers get it, without its topic and position (the stream's key and the
 * entry's id give those): `{"recordId","subject","contentHash","acceptedAt","payload"}`, the
 * payload being the record's canonical JSON, embedded as is.
 */
export function streamEntry(record: AcceptedRecord): string {
  return `{"recordId":"${record.recordId}","subject":${JSON.stringify(record.subject)},"contentHash":"${record.contentHash}","acceptedAt":${record.acceptedAt},"payload":${record.payload}}`;
}

/** The position of a topic stream's entry id (`0-<position>`). */
export function positionOfEntryId(id: string): number {
  return Number(id.slice(2));
}

/** A topic stream's entry id for a position. */
export function entryIdOf(position: number): string {
  return `0-${position}`;
}

/** Parses a positions key's value (`FANOUT_LUA`'s result). */
export function parsePositions(text: string): number[] {
  return text.length === 0 ? [] : text.split(',').map(Number);
}

export interface AddRecordBatchOptions {
  /** `XADD … MAXLEN ~` of every topic stream. */
  streamMaxLen: number;
  /** BullMQ options of the job (its id is always `jobIds.recordBatch(first record id)`). */
  jobOptions: Omit<JobsOptions, 'jobId'>;
}

/**
 * Queues `records` as one `recordBatch` job and fans them out to their topics' streams, in
 * one MULTI (`FANOUT_LUA`). Resolves with each record's position in its topic, in order.
 * Safe to retry after an error: the job id is deterministic and the fan-out happens once
 * per job (while its positions key lives).
 */
export async function addRecordBatch(
  queue: TypedQueue<'records'>,
  keys: Keys,
  records: readonly AcceptedRecord[],
  options: AddRecordBatchOptions,
): Promise<number[]> {
  const first = records[0];
  if (!first) return [];
  const jobId = jobIds.recordBatch(first.recordId);
  const client = (await queue.client) as unknown as Redis & { [COMMAND]?: unknown };
  if (typeof client[COMMAND] !== 'function') client.defineCommand(COMMAND, { lua: FANOUT_LUA });
  const streams = new Map<string, number>();
  const args: (string | number)[] = [options.streamMaxLen, POSITIONS_TTL_S];
  for (const record of records) {
    let index = streams.get(record.topic);
    if (index === undefined) {
      index = streams.size + 2;
      streams.set(record.topic, index);
    }
    args.push(index, streamEntry(record));
  }
  const multi = client.multi() as FanoutCommander;
  multi[COMMAND](
    1 + streams.size,
    keys.positions(jobId),
    ...[...streams.keys()].map((topic) => keys.topicStream(topic)),
    ...args,
  );
  const job = new Job(
    queue,
    'recordBatch',
    { records: [...records] },
    { ...options.jobOptions, jobId },
    jobId,
  );
  // Queues the add script's call in the MULTI (what BullMQ's FlowProducer does).
  void job.addJob(multi as unknown as Parameters<Job['addJob']>[0], {
    parentDependenciesKey: '',
  });
  const results = await multi.exec();
  if (!results) throw new Error('the MULTI of a record batch was discarded');
  for (const [error] of results) if (error) throw error;
  return parsePositions(String(results[0]![1]));
}

/** The positions `addRecordBatch` gave a job's records, or undefined (none, or expired). */
export async function readJobPositions(
  redis: Redis,
  keys: Keys,
  jobId: string,
): Promise<number[] | undefined> {
  const text = await redis.get(keys.positions(jobId));
  return text === null ? undefined : parsePositions(text);
}

/** Deletes the positions keys of jobs whose records are stored. */
export async function forgetJobPositions(
  redis: Redis,
  keys: Keys,
  jobIdList: readonly string[],
): Promise<void> {
  if (jobIdList.length === 0) return;
  await redis.unlink(...jobIdList.map((jobId) => keys.positions(jobId)));
}
