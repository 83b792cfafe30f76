import type { AcceptedRecord } from '@streamanchor/protocol';
import { Job, type JobsOptions } from 'bullmq';
import type { ChainableCommander, Redis } from 'ioredis';
import type { Keys } from './keys';
import { jobIds } from './queues';
import type { TypedQueue } from './typed';

/**
 * Gives one `recordBatch` job's records their topic positions and fans them out to the
 * streams of the topics relays watch, once per job. Runs in the MULTI that adds the job,
 * after the add: a group is either queued for storage and given positions (and fanned
 * out), or neither, so a subscriber never sees a record that was not queued nor misses one
 * that was. Records of topics nobody subscribes to cost a counter increment per topic and
 * job, no stream entry; for watched topics the records are read from the job itself (the
 * `data` field of BullMQ's job hash), so the relay sends them to Redis once.
 *
 * KEYS[1]   the job's positions key (`keys.positions(jobId)`)
 * KEYS[2]   the job's hash (`queue.toKey(jobId)`)
 * KEYS[3]   the watched topics (`keys.watchedTopics`)
 * KEYS[4..] per distinct topic of the job, in order: its position counter
 *           (`keys.topicPosition`), then its stream (`keys.topicStream`)
 * ARGV[1]   approximate most entries a stream keeps (`XADD … MAXLEN ~`)
 * ARGV[2]   seconds the positions key lives (the writer deletes it once the job is stored)
 * ARGV[3]   the number of records of the job
 * ARGV[4]   per record, the 1-based index of its topic among the distinct topics,
 *           comma-separated; empty when the job has one topic
 * ARGV[5..] the distinct topics, in the order of KEYS[4..]
 *
 * A topic's positions are 1, 2, 3… in the order jobs were given them, whichever relay
 * queued them; a stream entry's id is `0-<position>`. A counter found missing while its
 * stream exists (a Redis that lost the counter) restarts after the stream's last entry.
 * The entry is `streamEntry`'s shape, built here (numbers printed with `%.0f`: exact below
 * 2^53). Returns the positions, comma-separated in record order. A job given positions
 * before (a retried add whose reply was lost) is not again: its positions are returned.
 */
export const FANOUT_LUA = `
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
local n = tonumber(ARGV[3])
local topicOf = {}
if ARGV[4] == '' then
  for i = 1, n do topicOf[i] = 1 end
else
  local i = 0
  for t in string.gmatch(ARGV[4], '%d+') do
    i = i + 1
    topicOf[i] = tonumber(t)
  end
end
local counts = {}
for i = 1, n do counts[topicOf[i]] = (counts[topicOf[i]] or 0) + 1 end
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local nextPosition, stream = {}, {}
local watched = false
for t = 1, #ARGV - 4 do
  local counter, key = KEYS[2 + 2 * t], KEYS[3 + 2 * t]
  local count = counts[t] or 0
  local last = redis.call('INCRBY', counter, count)
  if last == count and redis.call('EXISTS', key) == 1 then
    local newest = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
    if newest then last = redis.call('INCRBY', counter, tonumber(string.sub(newest[1], 3))) end
  end
  nextPosition[t] = last - count + 1
  local untilMs = redis.call('ZSCORE', KEYS[3], ARGV[4 + t])
  if untilMs and tonumber(untilMs) > nowMs then
    stream[t] = key
    watched = true
  end
end
local records
if watched then
  local data = redis.call('HGET', KEYS[2], 'data')
  if not data then return redis.error_reply('ERR recordBatch job not found: ' .. KEYS[2]) end
  records = cjson.decode(data).records
end
local positions = {}
for i = 1, n do
  local t = topicOf[i]
  local position = string.format('%.0f', nextPosition[t])
  nextPosition[t] = nextPosition[t] + 1
  positions[i] = position
  if stream[t] then
    local r = records[i]
    local entry = '{"recordId":"' .. r.recordId .. '","subject":' .. cjson.encode(r.subject) ..
      ',"contentHash":"' .. r.contentHash .. '","acceptedAt":' .. string.format('%.0f', r.acceptedAt) ..
      ',"payload":' .. r.payload .. '}'
    redis.call('XADD', stream[t], 'MAXLEN', '~', ARGV[1], '0-' .. position, 'r', entry)
  end
end
local joined = table.concat(positions, ',')
redis.call('SET', KEYS[1], joined, 'EX', ARGV[2])
return joined
`;

/**
 * Marks topics watched (their records go to their streams) until TTL ms from now, by Redis's
 * clock, and returns each topic's last position, read after the mark: every later position
 * is in the stream. Drops the topics whose watch lapsed.
 *
 * KEYS[1]   the watched topics (`keys.watchedTopics`)
 * KEYS[2..] the topics' position counters (`keys.topicPosition`)
 * ARGV[1]   TTL (ms)
 * ARGV[2..] the topics, in the order of KEYS[2..]
 */
export const WATCH_LUA = `
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowMs)
local heads = {}
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'GT', nowMs + ttl, ARGV[i])
  heads[i - 1] = redis.call('GET', KEYS[i]) or '0'
end
return heads
`;

/**
 * Announces anchoring changes to the subscribers of the topics relays watch (a topic nobody
 * watches costs one ZSCORE).
 *
 * KEYS[1]   the watched topics (`keys.watchedTopics`)
 * KEYS[2..] per announcement, its topic's anchoring stream (`keys.topicAnchoring`)
 * ARGV[1]   approximate most entries a stream keeps
 * ARGV[2..] per announcement, in the order of KEYS[2..]: its topic, then its entry
 * Returns how many announcements were added.
 */
export const ANNOUNCE_LUA = `
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local added = 0
for i = 2, #KEYS do
  local untilMs = redis.call('ZSCORE', KEYS[1], ARGV[2 * i - 2])
  if untilMs and tonumber(untilMs) > nowMs then
    redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[1], '*', 'a', ARGV[2 * i - 1])
    added = added + 1
  end
end
return added
`;

/** One topic's part of a batch's anchoring change: the entry is `{"anchor":…,"positions":…}`. */
export interface AnchoringAnnouncement {
  topic: string;
  entry: string;
}

/** The field of a topic anchoring stream's entry. */
export const ANCHORING_FIELD = 'a';

const ANNOUNCE = 'streamanchorAnnounce';

/**
 * Adds each announcement to its topic's anchoring stream if some relay watches the topic
 * (ANNOUNCE_LUA). Resolves with how many were added.
 */
export async function announceAnchoring(
  redis: Redis,
  keys: Keys,
  announcements: readonly AnchoringAnnouncement[],
  streamMaxLen = 1000,
): Promise<number> {
  if (announcements.length === 0) return 0;
  const client = redis as Redis & {
    [ANNOUNCE]?: (numKeys: number, ...keysAndArgs: (string | number)[]) => Promise<number>;
  };
  if (typeof client[ANNOUNCE] !== 'function') client.defineCommand(ANNOUNCE, { lua: ANNOUNCE_LUA });
  return client[ANNOUNCE]!(
    1 + announcements.length,
    keys.watchedTopics,
    ...announcements.map((a) => keys.topicAnchoring(a.topic)),
    streamMaxLen,
    ...announcements.flatMap((a) => [a.topic, a.entry]),
  );
}

/** The field of a topic stream's entry that holds the record (`streamEntry`). */
export const STREAM_FIELD = 'r';

/** How long a job's positions key lives if the writer never stores the job (30 days). */
export const POSITIONS_TTL_S = 30 * 24 * 3600;

const FANOUT = 'streamanchorFanout';
const WATCH = 'streamanchorWatch';

type FanoutCommander = ChainableCommander & {
  [FANOUT](numKeys: number, ...keysAndArgs: (string | number)[]): ChainableCommander;
};
type ScriptClient = Redis & {
  [FANOUT]?: unknown;
  [WATCH]?: (numKeys: number, ...keysAndArgs: (string | number)[]) => Promise<string[]>;
};

/** The queue's connection, with the fan-out script defined on it. */
async function scriptClient(queue: TypedQueue<'records'>): Promise<ScriptClient> {
  const client = (await queue.client) as unknown as ScriptClient;
  if (typeof client[FANOUT] !== 'function') client.defineCommand(FANOUT, { lua: FANOUT_LUA });
  return client;
}

/**
 * Watches `topics` for `ttlMs` (WATCH_LUA): their records go to their streams from now on.
 * Resolves with each topic's last position, after which every record is in its stream.
 */
export async function watchTopics(
  redis: Redis,
  keys: Keys,
  topics: readonly string[],
  ttlMs: number,
): Promise<number[]> {
  if (topics.length === 0) return [];
  const client = redis as ScriptClient;
  if (typeof client[WATCH] !== 'function') client.defineCommand(WATCH, { lua: WATCH_LUA });
  const heads = await client[WATCH]!(
    1 + topics.length,
    keys.watchedTopics,
    ...topics.map((topic) => keys.topicPosition(topic)),
    ttlMs,
    ...topics,
  );
  return heads.map(Number);
}

/** The fields of a record a topic stream's entry carries. */
export interface StreamEntryFields {
  recordId: string;
  subject: string;
  contentHash: string;
  acceptedAt: number;
  /** The canonical payload (JSON text); null when it was pruned (payload retention). */
  payload: string | null;
}

/**
 * A record as subscribers get it, without its topic and position (the stream's key and the
 * entry's id give those): `{"recordId","subject","contentHash","acceptedAt","payload"}`, the
 * payload being the record's canonical JSON, embedded as is (a pruned one: `"payload":null,
 * "pruned":true`). FANOUT_LUA builds the same shape in Redis; the relay builds records read
 * from history with this.
 */
export function streamEntry(record: StreamEntryFields): string {
  const payload =
    record.payload === null ? '"payload":null,"pruned":true' : `"payload":${record.payload}`;
  return `{"recordId":"${record.recordId}","subject":${JSON.stringify(record.subject)},"contentHash":"${record.contentHash}","acceptedAt":${record.acceptedAt},${payload}}`;
}

/** The position of a topic stream's entry id (`0-<position>`). */
export function positionOfEntryId(id: string): number {
  return Number(id.slice(2));
}

/** A topic stream's entry id for a position. */
export function entryIdOf(position: number): string {
  return `0-${position}`;
}

/**
 * Orders two stream entry ids (`<ms>-<seq>`, as Redis does): negative when `a` comes first,
 * 0 when equal, positive after.
 */
export function compareEntryIds(a: string, b: string): number {
  const [aMs = '0', aSeq = '0'] = a.split('-');
  const [bMs = '0', bSeq = '0'] = b.split('-');
  return Number(aMs) - Number(bMs) || Number(aSeq) - Number(bSeq);
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
  if (records.length === 0) return [];
  return (await addRecordBatches(queue, keys, [records], options))[0]!;
}

/**
 * `addRecordBatch` for several jobs at once: each `records` of `jobs` is one `recordBatch`
 * job, added and fanned out in the order given, all in one MULTI (nothing of another client
 * runs between them: a later job's positions follow an earlier one's), in one round trip
 * instead of one per job. Resolves with each job's positions, in order (an empty job is
 * skipped: no positions). Any command failing fails the whole call; retrying it is safe, as
 * for addRecordBatch (each job's id is that of its first record, and its fan-out happens
 * once), so a caller that retries until it succeeds gets every job queued once, in order.
 */
export async function addRecordBatches(
  queue: TypedQueue<'records'>,
  keys: Keys,
  jobs: readonly (readonly AcceptedRecord[])[],
  options: AddRecordBatchOptions,
): Promise<number[][]> {
  if (jobs.every((records) => records.length === 0)) return jobs.map(() => []);
  const client = await scriptClient(queue);
  const multi = client.multi() as FanoutCommander;
  for (const records of jobs)
    if (records.length > 0) queueRecordBatch(multi, queue, keys, records, options);
  const results = await multi.exec();
  if (!results) throw new Error('the MULTI of a record batch was discarded');
  for (const [error] of results) if (error) throw error;
  // Each job queued two commands: the add, then its fan-out (whose reply is the positions).
  let reply = 1;
  return jobs.map((records) => {
    if (records.length === 0) return [];
    const positions = parsePositions(String(results[reply]![1]));
    reply += 2;
    return positions;
  });
}

/** Queues one job's add, then its fan-out, in `multi`. */
function queueRecordBatch(
  multi: FanoutCommander,
  queue: TypedQueue<'records'>,
  keys: Keys,
  records: readonly AcceptedRecord[],
  options: AddRecordBatchOptions,
): void {
  const jobId = jobIds.recordBatch(records[0]!.recordId);
  const topics: string[] = [];
  const indexOf = new Map<string, number>();
  const topicOf: number[] = [];
  for (const record of records) {
    let index = indexOf.get(record.topic);
    if (index === undefined) {
      topics.push(record.topic);
      index = topics.length;
      indexOf.set(record.topic, index);
    }
    topicOf.push(index);
  }
  const job = new Job(
    queue,
    'recordBatch',
    { records: [...records] },
    { ...options.jobOptions, jobId },
    jobId,
  );
  // Queues the add script's call in the MULTI (what BullMQ's FlowProducer does; BullMQ
  // queues it before its first await), then the fan-out, which reads the job it added.
  void job.addJob(multi as unknown as Parameters<Job['addJob']>[0], {
    parentDependenciesKey: '',
  });
  multi[FANOUT](
    3 + 2 * topics.length,
    keys.positions(jobId),
    queue.toKey(jobId),
    keys.watchedTopics,
    ...topics.flatMap((topic) => [keys.topicPosition(topic), keys.topicStream(topic)]),
    options.streamMaxLen,
    POSITIONS_TTL_S,
    records.length,
    topics.length === 1 ? '' : topicOf.join(','),
    ...topics,
  );
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
