/**
 * Worst-case cost of validating one data-channel message, with the relay's default limits
 * and its fast hasher: prints µs per message. Run: node --import tsx bench/validate-worst-case.ts
 */
import { createContentHasher, LIMITS } from '@streamanchor/protocol';
import { validateMessage } from '../src/records/validate';

const hash = await createContentHasher();
const ctx = {
  relayId: 'r',
  sessionId: 'AAAAAAAAAAAAAAAAAAAAAA',
  subject: 'a',
  topics: ['demo'],
  tokenExpiresAt: 9e15,
  maxMessageBytes: LIMITS.maxMessageBytes,
  maxPayloadBytes: LIMITS.maxPayloadBytes,
  hash,
};
const raw = (p: string) => `{"type":"publish","id":"p1","topic":"demo","payload":${p}}`;
const cases: Record<string, string> = {
  deep30k: raw(`${'['.repeat(30000)}${']'.repeat(30000)}`),
  keys3000: raw(`{${Array.from({ length: 3000 }, (_, i) => `"k${i}":${i}`).join(',')}}`),
  keys1024: raw(
    `{${Array.from({ length: 1024 }, (_, i) => `"key-number-${i}":"${'v'.repeat(40)}"`).join(',')}}`,
  ),
  deep32: raw(`${'['.repeat(32)}"${'x'.repeat(16000)}"${']'.repeat(32)}`),
  string60k: raw(`"${'x'.repeat(60000)}"`),
  keys1024small: raw(`{${Array.from({ length: 1024 }, (_, i) => `"k${i}":${i}`).join(',')}}`),
  total4096: raw(
    `[${Array.from({ length: 8 }, () => `[${Array(511).fill('1.5e300').join(',')}]`).join(',')}]`,
  ),
  small: raw(`{"n":1,"fill":"${'x'.repeat(80)}"}`),
};
for (const [name, text] of Object.entries(cases)) {
  const r = validateMessage(text, ctx);
  const n = name === 'small' ? 20000 : 300;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) validateMessage(text, ctx);
  const us = ((performance.now() - t0) / n) * 1000;
  console.log(
    name,
    text.length,
    'bytes',
    r.ok ? 'ok' : r.code,
    `${us.toFixed(0)} µs/msg`,
    `${Math.round(1e6 / us)} msg/s`,
  );
}
