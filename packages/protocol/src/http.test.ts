import { readFileSync } from 'node:fs';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { describe, expect, test } from 'vitest';
import {
  grantsAnyTopic,
  PROBLEM_TYPE_PREFIX,
  PROBLEMS,
  problem,
  TokenClaims,
  topicAllowed,
} from './http';

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

describe('TokenClaims.sub', () => {
  const claims = TypeCompiler.Compile(TokenClaims);
  const withSub = (sub: string) => ({ sub, topics: ['demo'], exp: 1 });
  test('error: control characters and unpaired surrogates are refused (storage cannot hold them)', () => {
    for (const sub of ['a\u0000b', '\u001f', 'del\u007f', 'a\nb', '\ud800', 'x\udc00y', '\ud83d'])
      expect(claims.Check(withSub(sub)), JSON.stringify(sub)).toBe(false);
  });
  test('default: any other text is a subject, paired surrogates included', () => {
    for (const sub of ['alice', 'ålice 中 😀', 'a:b/c', 'x'.repeat(128)])
      expect(claims.Check(withSub(sub)), sub).toBe(true);
    expect(claims.Check(withSub('x'.repeat(129)))).toBe(false);
  });
});

describe('TokenClaims.subscribe', () => {
  const claims = TypeCompiler.Compile(TokenClaims);
  const token = (grants: Record<string, unknown>) => ({ sub: 'alice', exp: 1, ...grants });
  test('default: optional; topic names or * like topics, and topics may then be empty', () => {
    expect(claims.Check(token({ topics: ['demo'] }))).toBe(true);
    expect(claims.Check(token({ topics: ['demo'], subscribe: ['demo', '*'] }))).toBe(true);
    expect(claims.Check(token({ topics: [], subscribe: ['demo'] }))).toBe(true);
  });
  test('error: an empty, oversized or malformed subscribe list is refused', () => {
    for (const subscribe of [[], ['UPPER'], 'demo', Array.from({ length: 257 }, (_, i) => `t${i}`)])
      expect(claims.Check(token({ topics: ['demo'], subscribe })), String(subscribe)).toBe(false);
  });
  test('behavior: grantsAnyTopic needs a topic to publish or to subscribe to', () => {
    expect(grantsAnyTopic({ topics: ['demo'] })).toBe(true);
    expect(grantsAnyTopic({ topics: [], subscribe: ['*'] })).toBe(true);
    expect(grantsAnyTopic({ topics: [] })).toBe(false);
    expect(grantsAnyTopic({ topics: [], subscribe: [] })).toBe(false);
  });
});
