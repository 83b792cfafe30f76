import {
  type BatchResponse,
  batchResponseProblem,
  HISTORY_LIMITS,
  type TopicRecordsResponse,
  topicRecordsResponseProblem,
} from '@streamanchor/protocol';
import { ChainFollowerError, SessionRequestError } from '../errors';
import { problemFromResponse } from '../problem';
import { defaultFetch, type FetchLike } from '../signaling';

/** How the follower reads the gateway's history routes (docs/protocol.md §3.8, §3.10). */
export interface GatewayReader {
  /** The gateway's base URL (…/v1/… is appended). */
  gatewayUrl: string;
  /** A bearer token: any valid token reads batches; payloads and topics need `subscribe`. */
  token?: string;
  fetch?: FetchLike;
  signal?: AbortSignal;
  /** Called before each wait (a retry after 429, 503, 404 batch_pending, a network failure). */
  onRetry?(detail: string, waitMs: number): void;
}

/** Longest wait between two tries without a Retry-After. */
const MAX_BACKOFF_MS = 15_000;

/** The gateway's answer to one GET: a 200 body, or a refusal to report. */
type Answer =
  | { ok: true; body: unknown }
  | { ok: false; status: number; code: string; detail: string };

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done);
  });
}

function aborted(signal: AbortSignal | undefined): ChainFollowerError {
  return new ChainFollowerError('The follower was stopped', { cause: signal?.reason });
}

/**
 * GETs `path` until it is answered: 429, 503 and network failures are tried again after
 * Retry-After (else a growing pause), as are the 404s `retry404` lists while `until()` holds.
 * Another refusal is returned; a 4xx that asking again cannot mend (401, 403) throws.
 */
async function getJson(
  reader: GatewayReader,
  path: string,
  { retry404 = [], until = () => true }: { retry404?: string[]; until?: () => boolean } = {},
): Promise<Answer> {
  const url = `${reader.gatewayUrl.replace(/\/+$/, '')}${path}`;
  const doFetch = reader.fetch ?? defaultFetch;
  let backoffMs = 0;
  for (;;) {
    if (reader.signal?.aborted) throw aborted(reader.signal);
    let response: Response | undefined;
    let failure: string;
    try {
      response = await doFetch(url, {
        headers: {
          Accept: 'application/json, application/problem+json',
          ...(reader.token ? { Authorization: `Bearer ${reader.token}` } : {}),
        },
        ...(reader.signal ? { signal: reader.signal } : {}),
      });
    } catch (error) {
      if (reader.signal?.aborted) throw aborted(reader.signal);
      failure = `could not reach ${url}: ${(error as Error)?.message ?? String(error)}`;
    }
    let retryAfterMs: number | undefined;
    if (response) {
      if (response.status === 200) {
        const body: unknown = await response.json().catch(() => undefined);
        return { ok: true, body };
      }
      const retryAfter = Number(response.headers.get('retry-after'));
      if (Number.isFinite(retryAfter) && retryAfter > 0) retryAfterMs = retryAfter * 1000;
      const problem = await problemFromResponse(response);
      const answer = {
        ok: false as const,
        status: problem.status,
        code: problem.code,
        detail: `${problem.status} ${problem.code}${problem.detail ? `: ${problem.detail}` : ''}`,
      };
      const transient = problem.status === 429 || problem.status >= 500 || problem.status === 408;
      const wanted = problem.status === 404 && retry404.includes(problem.code) && until();
      if (!transient && !wanted) {
        if (problem.status === 401 || problem.status === 403) {
          throw new ChainFollowerError(`The gateway refused GET ${url}`, {
            details: answer.detail,
            cause: problem instanceof SessionRequestError ? problem : undefined,
          });
        }
        return answer;
      }
      failure = `GET ${url}: ${answer.detail}`;
    }
    backoffMs = retryAfterMs ?? Math.min(MAX_BACKOFF_MS, backoffMs * 2 || 1000);
    reader.onRetry?.(failure!, backoffMs);
    await pause(backoffMs, reader.signal);
  }
}

/** A batch's pages as served, or why it is not. */
export type BatchPages =
  | { served: true; pages: BatchResponse[] }
  | { served: false; reason: 'not_served' | 'malformed'; detail: string };

/**
 * Every page of GET /v1/batches/<batchId> (§3.10), following `next`. `404 batch_pending` and
 * `404 batch_not_found` (the indexer has not read the batch yet) are asked again after
 * Retry-After until `notServedAfterMs` has passed; then, or on another refusal, the batch is
 * not served. A 200 whose body is not a BatchResponse (or a `next` that does not move on) is
 * malformed.
 */
export async function fetchBatchPages(
  reader: GatewayReader,
  batchId: string,
  { notServedAfterMs }: { notServedAfterMs: number },
): Promise<BatchPages> {
  const giveUpAt = Date.now() + notServedAfterMs;
  const pages: BatchResponse[] = [];
  let from = 0;
  for (;;) {
    const path = `/v1/batches/${batchId}?from=${from}&limit=${HISTORY_LIMITS.maxPageRecords}`;
    const answer = await getJson(reader, path, {
      retry404: ['batch_pending', 'batch_not_found'],
      until: () => Date.now() < giveUpAt,
    });
    if (!answer.ok) {
      return {
        served: false,
        reason: 'not_served',
        detail: `GET ${path} answered ${answer.detail}${answer.status === 404 ? ` after ${Math.round(notServedAfterMs / 1000)} s of asking` : ''}`,
      };
    }
    const malformed = batchResponseProblem(answer.body);
    if (malformed !== undefined) {
      return {
        served: false,
        reason: 'malformed',
        detail: `GET ${path}: not a batch page (${malformed})`,
      };
    }
    const page = answer.body as BatchResponse;
    pages.push(page);
    if (page.next === null) return { served: true, pages };
    if (page.next <= from) {
      return {
        served: false,
        reason: 'malformed',
        detail: `GET ${path}: next ${page.next} does not move on`,
      };
    }
    from = page.next;
  }
}

/**
 * One page of GET /v1/topics/<topic>/records (§3.8) after `after`. Throws ChainFollowerError
 * for a refusal or a body that is not a history page.
 */
export async function fetchTopicPage(
  reader: GatewayReader,
  topic: string,
  after: number,
): Promise<TopicRecordsResponse> {
  const path = `/v1/topics/${encodeURIComponent(topic)}/records?after=${after}&limit=${HISTORY_LIMITS.maxPageRecords}`;
  const answer = await getJson(reader, path);
  if (!answer.ok) {
    throw new ChainFollowerError(`Could not read the history of ${topic}`, {
      details: `GET ${path}: ${answer.detail}`,
    });
  }
  const malformed = topicRecordsResponseProblem(answer.body);
  if (malformed !== undefined) {
    throw new ChainFollowerError(`The gateway's history of ${topic} is not a history page`, {
      details: `GET ${path}: ${malformed}`,
    });
  }
  return answer.body as TopicRecordsResponse;
}
