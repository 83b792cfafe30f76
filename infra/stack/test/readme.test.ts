import { readFileSync } from 'node:fs';
import type { TObject } from '@sinclair/typebox';
import { ConfigSchema as indexer } from '@streamanchor/chain-indexer';
import { ConfigSchema as writer } from '@streamanchor/chain-writer';
import { ConfigSchema as relay } from '@streamanchor/rtc-relay';
import { ConfigSchema as gateway } from '@streamanchor/signaling-gateway';
import { describe, expect, test } from 'vitest';
import { StackConfigSchema } from '../src/config';

// The README's configuration tables are the operator's reference: every variable a
// service or the local stack reads must have a row there.
const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

describe('README configuration tables', () => {
  test.each([
    ['signaling-gateway', gateway],
    ['rtc-relay', relay],
    ['chain-writer', writer],
    ['chain-indexer', indexer],
    ['stack', StackConfigSchema],
  ] as [string, TObject][])('default: %s variables are documented', (_, schema) => {
    const missing = Object.keys(schema.properties).filter(
      (name) => !readme.includes(`| \`${name}\` |`),
    );
    expect(missing).toEqual([]);
  });
});
