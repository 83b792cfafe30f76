import type { Receipt } from '@streamanchor/protocol';
import { ConnectError, StreamAnchorError } from './errors';
import { type IceServer, parseIceServerLinks } from './link-header';
import { problemFromResponse } from './problem';

/** The subset of `fetch` the SDK uses; pass your own to add headers, logging or a polyfill. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** `globalThis.fetch`, called unbound-safe (browsers throw "Illegal invocation" otherwise). */
export const defaultFetch: FetchLike = (input, init) => globalThis.fetch(input, init);

/** What the gateway answered to an offer. */
export interface SessionResource {
  answerSdp: string;
  /** Absolute URL of the session resource (from `Location`, resolved against the request URL). */
  url: string;
  etag: string | null;
  /** ICE servers from `Link: <…>; rel="ice-server"` headers (RFC 9725 §4.6); may be empty. */
  iceServers: IceServer[];
}

/** `${baseUrl}/v1/sessions`, absolute (a relative baseUrl resolves against the page's location). */
export function sessionsUrl(baseUrl: string): string {
  return toAbsolute(`${baseUrl.replace(/\/+$/, '')}/v1/sessions`);
}

function toAbsolute(url: string, base?: string): string {
  if (base !== undefined) return new URL(url, base).toString();
  try {
    return new URL(url).toString();
  } catch {
    const here = (globalThis as { location?: { href?: string } }).location?.href;
    if (!here)
      throw new StreamAnchorError(`Not an absolute URL: ${url}`, {
        details: 'Pass an absolute baseUrl.',
      });
    return new URL(url, here).toString();
  }
}

/**
 * POSTs an SDP offer (WHIP-style). Resolves on 201 with the answer; otherwise rejects
 * with a SessionRequestError built from the problem+json body, or a ConnectError when
 * the gateway could not be reached or answered something unusable.
 */
export async function postOffer(options: {
  baseUrl: string;
  token: string;
  offerSdp: string;
  fetch?: FetchLike;
  signal?: AbortSignal;
}): Promise<SessionResource> {
  const url = sessionsUrl(options.baseUrl);
  const doFetch = options.fetch ?? defaultFetch;
  let response: Response;
  try {
    response = await doFetch(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/sdp',
        Accept: 'application/sdp, application/problem+json',
        Authorization: `Bearer ${options.token}`,
      },
      body: options.offerSdp,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    throw new ConnectError('Could not reach the signaling gateway', {
      details: `POST ${url}: ${(error as Error).message}`,
      cause: error,
    });
  }
  if (response.status !== 201) throw await problemFromResponse(response);
  const location = response.headers.get('location');
  if (!location) {
    throw new ConnectError('The gateway answered without a Location header', {
      details: 'A cross-origin gateway must list Location in Access-Control-Expose-Headers.',
    });
  }
  const answerSdp = await response.text();
  if (!answerSdp.startsWith('v=')) {
    throw new ConnectError('The gateway answered with something that is not SDP', {
      details: answerSdp.slice(0, 200),
    });
  }
  return {
    answerSdp,
    url: toAbsolute(location, url),
    etag: response.headers.get('etag'),
    iceServers: parseIceServerLinks(response.headers.get('link')),
  };
}

/**
 * Asks the gateway for ICE servers before an offer is built (docs/protocol.md §3.1.1):
 * `OPTIONS ${baseUrl}/v1/sessions` with the bearer token. Resolves with the servers of its
 * `Link: <…>; rel="ice-server"` headers: STUN, and TURN with credentials minted for this
 * request; none from a gateway that announces none. Rejects like postOffer.
 */
export async function fetchIceServers(options: {
  baseUrl: string;
  token: string;
  fetch?: FetchLike;
  signal?: AbortSignal;
}): Promise<IceServer[]> {
  return (await fetchSessionOptions(options)).iceServers;
}

/** The media type of trickled candidates (RFC 8840), in PATCH bodies and `Accept-Patch`. */
export const TRICKLE_ICE_SDPFRAG = 'application/trickle-ice-sdpfrag';

/**
 * `OPTIONS ${baseUrl}/v1/sessions` with the bearer token: the ICE servers (as
 * fetchIceServers) and whether the gateway takes trickled candidates (its `Accept-Patch`
 * names application/trickle-ice-sdpfrag). Rejects like postOffer.
 */
export async function fetchSessionOptions(options: {
  baseUrl: string;
  token: string;
  fetch?: FetchLike;
  signal?: AbortSignal;
}): Promise<{ iceServers: IceServer[]; trickle: boolean }> {
  const url = sessionsUrl(options.baseUrl);
  const doFetch = options.fetch ?? defaultFetch;
  let response: Response;
  try {
    response = await doFetch(url, {
      method: 'OPTIONS',
      headers: { Authorization: `Bearer ${options.token}` },
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    throw new ConnectError('Could not reach the signaling gateway', {
      details: `OPTIONS ${url}: ${(error as Error).message}`,
      cause: error,
    });
  }
  if (!response.ok) throw await problemFromResponse(response);
  await response.body?.cancel().catch(() => undefined);
  return {
    iceServers: parseIceServerLinks(response.headers.get('link')),
    trickle: acceptsTrickle(response.headers.get('accept-patch')),
  };
}

function acceptsTrickle(acceptPatch: string | null): boolean {
  return (acceptPatch ?? '')
    .split(',')
    .some((type) => type.split(';')[0]?.trim().toLowerCase() === TRICKLE_ICE_SDPFRAG);
}

/**
 * PATCHes trickled ICE candidates to a session (docs/protocol.md §3.3, RFC 9725 §4.3.1):
 * `body` is an `application/trickle-ice-sdpfrag` fragment, `etag` the session's ETag (sent
 * as If-Match; `*` when there is none). Resolves with the response's ETag on 204; rejects
 * with a SessionRequestError carrying the problem (`method_not_allowed` from a gateway
 * without trickle, `precondition_failed`, `invalid_sdpfrag`, …), or a ConnectError.
 */
export async function patchCandidates(options: {
  url: string;
  token: string;
  etag: string | null;
  body: string;
  fetch?: FetchLike;
  signal?: AbortSignal;
}): Promise<string | null> {
  const doFetch = options.fetch ?? defaultFetch;
  let response: Response;
  try {
    response = await doFetch(options.url, {
      method: 'PATCH',
      headers: {
        'Content-Type': TRICKLE_ICE_SDPFRAG,
        'If-Match': options.etag ?? '*',
        Authorization: `Bearer ${options.token}`,
      },
      body: options.body,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    throw new ConnectError('Could not reach the signaling gateway', {
      details: `PATCH ${options.url}: ${(error as Error).message}`,
      cause: error,
    });
  }
  if (response.status !== 204 && response.status !== 200) throw await problemFromResponse(response);
  await response.body?.cancel().catch(() => undefined);
  return response.headers.get('etag') ?? options.etag;
}

/** DELETEs a session resource. A 404 (already gone) counts as success. */
export async function deleteSessionResource(options: {
  url: string;
  token: string;
  fetch?: FetchLike;
  signal?: AbortSignal;
}): Promise<void> {
  const doFetch = options.fetch ?? defaultFetch;
  const response = await doFetch(options.url, {
    method: 'DELETE',
    headers: { Authorization: `Bearer ${options.token}` },
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (response.ok || response.status === 404) {
    await response.body?.cancel().catch(() => undefined);
    return;
  }
  throw await problemFromResponse(response);
}

/** `${baseUrl}/v1/records/<recordId>/receipt`, absolute. */
export function receiptUrl(baseUrl: string, recordId: string): string {
  return toAbsolute(
    `${baseUrl.replace(/\/+$/, '')}/v1/records/${encodeURIComponent(recordId)}/receipt`,
  );
}

/**
 * GETs a record's current receipt from the gateway (docs/protocol.md §3.7): for records
 * whose receipt never arrived over the channel because the session ended first, or to see
 * how final a receipt is now. `token` must be one of the record's subject.
 *
 * Resolves with the receipt (`status` `included` or `final`). Rejects with a
 * SessionRequestError carrying the problem `code`: `receipt_pending` (stored, not anchored
 * yet: ask again later), `record_not_found` (unknown, or another subject's),
 * `indexer_unavailable`, `bad_request`, `unauthorized`; or with a ConnectError when the
 * gateway could not be reached or answered something that is not this record's receipt.
 * Verify the receipt (verifyReceipt) before trusting it.
 */
export async function fetchReceipt(options: {
  baseUrl: string;
  token: string;
  recordId: string;
  fetch?: FetchLike;
  signal?: AbortSignal;
}): Promise<Receipt> {
  const url = receiptUrl(options.baseUrl, options.recordId);
  const doFetch = options.fetch ?? defaultFetch;
  let response: Response;
  try {
    response = await doFetch(url, {
      method: 'GET',
      headers: {
        Accept: 'application/json, application/problem+json',
        Authorization: `Bearer ${options.token}`,
      },
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    throw new ConnectError('Could not reach the signaling gateway', {
      details: `GET ${url}: ${(error as Error).message}`,
      cause: error,
    });
  }
  if (response.status !== 200) throw await problemFromResponse(response);
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const receipt = body as Partial<Receipt> | undefined;
  if (
    typeof receipt !== 'object' ||
    receipt === null ||
    receipt.recordId !== options.recordId ||
    (receipt.status !== 'included' && receipt.status !== 'final')
  ) {
    throw new ConnectError('The gateway answered with something that is not this receipt', {
      details: text.slice(0, 200),
    });
  }
  return receipt as Receipt;
}
