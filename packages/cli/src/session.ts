import {
  connect,
  NackError,
  SessionRequestError,
  StreamAnchorError,
  type StreamAnchorSession,
} from '@streamanchor/client';
import { CommandError } from './args';
import { createPeerConnection } from './webrtc';

/** Opens a session at the gateway `url` (the SDK's `connect`, WebRTC from node-datachannel). */
export function connectSession(url: string, token: string): Promise<StreamAnchorSession> {
  return connect({ baseUrl: url, token, createPeerConnection });
}

/** connectSession, its failure a CommandError. */
export async function openSession(url: string, token: string): Promise<StreamAnchorSession> {
  try {
    return await connectSession(url, token);
  } catch (error) {
    throw new CommandError(`could not open a session at ${url}: ${describeError(error)}`);
  }
}

/**
 * Whether asking again cannot help: the gateway refused the request itself (a 4xx other than
 * 408 and 429: a bad or expired token, a topic not granted, …). Network failures, 5xx, 429
 * and closed sessions are worth another try.
 */
export function isPermanent(error: unknown): boolean {
  return (
    error instanceof SessionRequestError &&
    error.status >= 400 &&
    error.status < 500 &&
    error.status !== 408 &&
    error.status !== 429
  );
}

/** Longest wait before asking again for a session (or a history page) that failed. */
const MAX_BACKOFF_MS = 15_000;

/** The wait after a failure, given the previous wait (0 at the first one): 1, 2, 4 … 15 s. */
export function nextBackoff(previousMs: number): number {
  return Math.min(MAX_BACKOFF_MS, previousMs * 2 || 1000);
}

/** One line for an SDK error: the problem's status and code, the nack's code, or the message. */
export function describeError(error: unknown): string {
  if (error instanceof SessionRequestError) {
    return `${error.status} ${error.code}: ${error.detail ?? error.title}`;
  }
  if (error instanceof NackError) return `${error.code}: ${error.details ?? ''}`;
  if (error instanceof StreamAnchorError) {
    return error.details ? `${error.shortMessage} (${error.details})` : error.shortMessage;
  }
  return (error as Error)?.message ?? String(error);
}
