import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROBLEMS, RELAY_ERRORS } from '@streamanchor/protocol';
import { describe, expect, test } from 'vitest';
import { refusal } from './refusal';

// Every code the relay can refuse a control request with, read from its sources: the
// relay throws only through `refusal(code, …)`, so these literals are all there is.
const SRC = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const files = sources(SRC).map((path) => ({ path, text: readFileSync(path, 'utf8') }));
const thrown = new Set(
  files.flatMap(({ text }) => [...text.matchAll(/\brefusal\(\s*'([a-z_]+)'/g)].map((m) => m[1])),
);

describe('relay refusals', () => {
  test('default: every code the relay throws is in RELAY_ERRORS and maps to a PROBLEMS code', () => {
    expect(thrown.size).toBeGreaterThan(0);
    for (const code of thrown) {
      expect(Object.keys(RELAY_ERRORS), code).toContain(code);
      expect(Object.keys(PROBLEMS), code).toContain(
        RELAY_ERRORS[code as keyof typeof RELAY_ERRORS].problem,
      );
    }
  });

  test('behavior: the table has no dead entries (every code is thrown somewhere)', () => {
    expect([...thrown].sort()).toEqual(Object.keys(RELAY_ERRORS).sort());
  });

  test('error: no RemoteError is built outside refusal()', () => {
    for (const { path, text } of files) {
      if (path.endsWith('refusal.ts')) continue;
      expect(text.includes('new RemoteError('), path).toBe(false);
    }
    expect(refusal('at_capacity', 'full')).toMatchObject({ code: 'at_capacity', detail: 'full' });
  });
});
