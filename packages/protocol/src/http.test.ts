import { readFileSync } from 'node:fs';
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

describe('PROBLEMS and docs/protocol.md §3.6', () => {
  test('default: the table lists every code with its status, and nothing else', () => {
    const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('### 3.6 Problems'), doc.indexOf('\n## 4.'));
    const rows = [...section.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map(
      ([, code, status]) => [code, Number(status)],
    );
    expect(rows).toEqual(Object.entries(PROBLEMS).map(([code, { status }]) => [code, status]));
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
