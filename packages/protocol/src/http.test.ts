import { describe, expect, test } from 'vitest';
import { PROBLEM_TYPE_PREFIX, PROBLEMS, problem, topicAllowed } from './http';

describe('problem', () => {
  test('default: RFC 9457 fields plus code', () => {
    expect(problem('invalid_sdp', 'no data channel')).toEqual({
      type: `${PROBLEM_TYPE_PREFIX}invalid_sdp`,
      title: PROBLEMS.invalid_sdp.title,
      status: 400,
      code: 'invalid_sdp',
      detail: 'no data channel',
    });
  });

  test('behavior: every code maps to a 4xx or 5xx status', () => {
    for (const { status } of Object.values(PROBLEMS))
      expect(status >= 400 && status < 600).toBe(true);
  });
});

describe('topicAllowed', () => {
  test('default: exact grants', () => {
    expect(topicAllowed(['demo'], 'demo')).toBe(true);
    expect(topicAllowed(['demo'], 'demo2')).toBe(false);
  });

  test('behavior: * grants everything', () => {
    expect(topicAllowed(['*'], 'anything')).toBe(true);
  });
});
