import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ANVIL_TEST_PRIVATE_KEY,
  deleteRedisPrefix,
  startAnvil,
  TEST_REDIS_URL,
  testRedisPrefix,
} from '@streamanchor/testing';
import { describe, expect, it } from 'vitest';

const appDir = join(dirname(fileURLToPath(import.meta.url)), '..');

function runMain(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: appDir,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('main', () => {
  it('error: exits 1 with a clear message when CHAIN_ID does not match the RPC (and never prints the key)', async () => {
    const anvil = await startAnvil();
    const dataDir = mkdtempSync(join(tmpdir(), 'sa-writer-main-'));
    const prefix = testRedisPrefix('writer-main');
    try {
      const { code, output } = await runMain({
        RPC_URL: anvil.rpcUrl,
        CHAIN_ID: '5',
        CONTRACT_ADDRESS: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
        WRITER_PRIVATE_KEY: ANVIL_TEST_PRIVATE_KEY,
        DATA_DIR: dataDir,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: prefix,
      });
      expect(code).toBe(1);
      expect(output).toContain('RPC reports chain id 31337, but CHAIN_ID is 5');
      expect(output).not.toContain(ANVIL_TEST_PRIVATE_KEY.slice(2));
    } finally {
      await anvil.stop();
      rmSync(dataDir, { recursive: true, force: true });
      await deleteRedisPrefix(prefix);
    }
  });

  it('error: exits 1 naming the missing variables', async () => {
    const { code, output } = await runMain({ RPC_URL: 'http://127.0.0.1:1' });
    expect(code).toBe(1);
    expect(output).toContain('Invalid configuration for chain-writer');
    expect(output).toContain('CHAIN_ID');
    expect(output).toContain('WRITER_PRIVATE_KEY');
  });
});
