import type { ProblemCode } from './http';

/**
 * Every refusal a relay answers a `relayControl` request (createSession, deleteSession)
 * with: the `code` of the RemoteError it throws, what it means, and the one HTTP problem
 * (PROBLEMS) the gateway turns it into. The relay throws only these codes and the gateway
 * maps only through this table; tests on both sides keep them in step.
 *
 * `detail`: `'relay'` forwards the relay's own detail to the client (it is about the
 * client's request and holds nothing internal); a string is the fixed detail sent
 * instead; absent sends none. Problems with status 503 carry `Retry-After`.
 */
export const RELAY_ERRORS = {
  invalid_request: {
    meaning: 'The job data is not a valid request (a gateway bug or a version skew).',
    problem: 'internal_error',
  },
  invalid_sdp: {
    meaning: 'The offer is not usable SDP, or the WebRTC stack refused it.',
    problem: 'invalid_sdp',
    detail: 'relay',
  },
  token_expired: {
    meaning: 'The token expired before the relay took the request.',
    problem: 'unauthorized',
    detail: 'The token has expired',
  },
  at_capacity: {
    meaning: 'The relay holds its maximum number of sessions.',
    problem: 'no_relay_available',
    detail: 'The relay cannot take the session now; retry shortly',
  },
  shutting_down: {
    meaning: 'The relay is draining or shutting down and takes no new sessions.',
    problem: 'no_relay_available',
    detail: 'The relay cannot take the session now; retry shortly',
  },
  session_closed: {
    meaning: 'The session closed while it was being created (for example, the relay stopped).',
    problem: 'no_relay_available',
    detail: 'The relay cannot take the session now; retry shortly',
  },
  deadline_exceeded: {
    meaning: 'The request or its answer came after the deadline the gateway set.',
    problem: 'relay_timeout',
    detail: 'The relay did not answer in time; retry shortly',
  },
  session_exists: {
    meaning: 'The session id is already taken on this relay (ids are random: a gateway bug).',
    problem: 'internal_error',
  },
  session_not_found: {
    meaning: 'The relay does not hold the session (it ended).',
    problem: 'session_not_found',
  },
  invalid_sdpfrag: {
    meaning:
      'A trickled candidate is not usable (unknown mid, after end-of-candidates, too many, or refused by the WebRTC stack).',
    problem: 'invalid_sdpfrag',
    detail: 'relay',
  },
  ice_restart_unsupported: {
    meaning:
      'The PATCH asks for an ICE restart (new ice-ufrag/ice-pwd), which the relay cannot do.',
    problem: 'ice_restart_unsupported',
    detail: 'relay',
  },
  internal_error: {
    meaning: 'The relay failed for a reason of its own (it logs it).',
    problem: 'internal_error',
  },
} as const satisfies Record<string, { meaning: string; problem: ProblemCode; detail?: string }>;

export type RelayErrorCode = keyof typeof RELAY_ERRORS;

export function isRelayErrorCode(code: string): code is RelayErrorCode {
  return Object.hasOwn(RELAY_ERRORS, code);
}

/**
 * The problem a relay refusal becomes: its code, and the detail to send (the relay's own
 * when the table says so). A code outside the table (a newer relay?) is `internal_error`.
 */
export function relayErrorProblem(
  code: string,
  relayDetail: string,
): { problem: ProblemCode; detail: string | undefined; known: boolean } {
  if (!isRelayErrorCode(code))
    return { problem: 'internal_error', detail: undefined, known: false };
  const entry: { problem: ProblemCode; detail?: string } = RELAY_ERRORS[code];
  const detail = entry.detail === 'relay' ? relayDetail : entry.detail;
  return { problem: entry.problem, detail, known: true };
}
