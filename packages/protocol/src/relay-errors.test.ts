import { describe, expect, test } from 'vitest';
import { PROBLEMS } from './http';
import { isRelayErrorCode, RELAY_ERRORS, relayErrorProblem } from './relay-errors';

describe('RELAY_ERRORS', () => {
  test('default: every code has a meaning and maps to a PROBLEMS code', () => {
    for (const [code, entry] of Object.entries(RELAY_ERRORS)) {
      expect(entry.meaning.length, code).toBeGreaterThan(0);
      expect(Object.keys(PROBLEMS), code).toContain(entry.problem);
    }
  });

  test('behavior: the relay detail is forwarded only where the table says so', () => {
    expect(relayErrorProblem('invalid_sdp', 'no DTLS setup role')).toEqual({
      problem: 'invalid_sdp',
      detail: 'no DTLS setup role',
      known: true,
    });
    const full = relayErrorProblem('at_capacity', 'holds 1000 sessions');
    expect(full.problem).toBe('no_relay_available');
    expect(full.detail).not.toContain('1000');
    expect(relayErrorProblem('internal_error', 'stack trace…')).toEqual({
      problem: 'internal_error',
      detail: undefined,
      known: true,
    });
    expect(relayErrorProblem('token_expired', '').problem).toBe('unauthorized');
  });

  test('error: a code outside the table is internal_error, and nothing of it leaks', () => {
    expect(isRelayErrorCode('overloaded')).toBe(false);
    expect(isRelayErrorCode('toString')).toBe(false);
    expect(relayErrorProblem('overloaded', 'SECRET')).toEqual({
      problem: 'internal_error',
      detail: undefined,
      known: false,
    });
  });

  test('behavior: only client-side problems forward the relay detail (never a 5xx)', () => {
    for (const [code, entry] of Object.entries(RELAY_ERRORS)) {
      const detail = (entry as { detail?: string }).detail;
      if (detail === 'relay') expect(PROBLEMS[entry.problem].status, code).toBeLessThan(500);
    }
  });
});
