import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { TEST_SECRET } from '../../test/support';
import { verifyToken } from '../auth';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, 'mint-token.ts');
const tsx = join(here, '../../../../node_modules/.bin/tsx');

async function mint(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run(tsx, [cli, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('pnpm token', () => {
  it('default: prints only a token the gateway accepts', async () => {
    const result = await mint(['--sub', 'demo', '--topics', 'demo,telemetry', '--ttl', '120'], {
      JWT_SECRET: TEST_SECRET,
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const claims = await verifyToken(result.stdout.trim(), new TextEncoder().encode(TEST_SECRET));
    expect(claims.sub).toBe('demo');
    expect(claims.topics).toEqual(['demo', 'telemetry']);
    expect(claims).not.toHaveProperty('subscribe');
    expect(claims.exp - claims.iat!).toBe(120);
  });

  it('behavior: --subscribe grants subscribing, with --topics or alone', async () => {
    const env = { JWT_SECRET: TEST_SECRET };
    const [both, alone] = await Promise.all([
      mint(['--sub', 'demo', '--topics', 'demo', '--subscribe', 'demo, telemetry'], env),
      mint(['--sub', 'demo', '--subscribe', '*'], env),
    ]);
    const claimsOf = (stdout: string) =>
      verifyToken(stdout.trim(), new TextEncoder().encode(TEST_SECRET));
    expect(both.code, both.stderr).toBe(0);
    expect(await claimsOf(both.stdout)).toMatchObject({
      topics: ['demo'],
      subscribe: ['demo', 'telemetry'],
    });
    expect(alone.code, alone.stderr).toBe(0);
    expect(await claimsOf(alone.stdout)).toMatchObject({ topics: [], subscribe: ['*'] });
  });

  it('error: a missing secret or bad arguments exit non-zero with nothing on stdout', async () => {
    const [noSecret, noTopics, badTopic] = await Promise.all([
      mint(['--sub', 'demo', '--topics', 'demo'], {}),
      mint(['--sub', 'demo'], { JWT_SECRET: TEST_SECRET }),
      mint(['--sub', 'demo', '--topics', 'Bad Topic'], { JWT_SECRET: TEST_SECRET }),
    ]);
    expect(noSecret.code).toBe(1);
    expect(noSecret.stdout).toBe('');
    expect(noSecret.stderr).toContain('JWT_SECRET');
    expect(noTopics.code).toBe(2);
    expect(noTopics.stdout).toBe('');
    expect(noTopics.stderr).toContain('--sub, and --topics or --subscribe (or both), are required');
    expect(badTopic.code).toBe(2);
    expect(badTopic.stderr).toContain('invalid topic');
  });

  it('error: a bad --subscribe topic, or lists that grant nothing, exit 2 with nothing on stdout', async () => {
    const env = { JWT_SECRET: TEST_SECRET };
    const [badTopic, empty] = await Promise.all([
      mint(['--sub', 'demo', '--topics', 'demo', '--subscribe', 'Bad Topic'], env),
      mint(['--sub', 'demo', '--topics', ',', '--subscribe', ' '], env),
    ]);
    expect(badTopic.code).toBe(2);
    expect(badTopic.stdout).toBe('');
    expect(badTopic.stderr).toContain('invalid topic "Bad Topic"');
    expect(empty.code).toBe(2);
    expect(empty.stdout).toBe('');
    expect(empty.stderr).toContain(
      'invalid token claims: grant at least one topic in topics or subscribe',
    );
  });

  it('behavior: `pnpm run token …` (as the README says) works, with or without --, and sets aud/iss', async () => {
    const root = join(here, '../../../..');
    const pnpm = join(root, 'node_modules/.bin/pnpm');
    for (const args of [
      ['run', 'token', '--sub', 'demo', '--topics', 'demo'],
      ['run', 'token', '--', '--sub', 'demo', '--topics', 'demo'],
    ]) {
      const { stdout } = await run(pnpm, ['--silent', ...args], {
        cwd: root,
        env: {
          ...process.env,
          JWT_SECRET: TEST_SECRET,
          JWT_AUDIENCE: 'streamanchor',
          JWT_ISSUER: 'ops',
        },
      });
      const token = stdout.trim().split('\n').pop() ?? '';
      const claims = await verifyToken(token, new TextEncoder().encode(TEST_SECRET), {
        audience: 'streamanchor',
        issuer: 'ops',
      });
      expect(claims).toMatchObject({ sub: 'demo', aud: 'streamanchor', iss: 'ops' });
    }
  });
});
