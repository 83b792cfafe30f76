import { createServer } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { createLogger } from './logger';
import { collectedMetric, registerQueueDepths, registry } from './metrics';
import { createOpsServer, type OpsServer, type OpsServerOptions } from './ops-server';

const logger = createLogger({ service: 'test', level: 'silent' });

/** A port free right now (OPS_PORT 0 means no server, so the tests pick one). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

let server: OpsServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function start(options: Partial<OpsServerOptions> = {}): Promise<string> {
  server = createOpsServer({ host: '127.0.0.1', port: await freePort(), logger, ...options });
  await server.start();
  if (!server.url) throw new Error('ops server did not start');
  return server.url;
}

describe('createOpsServer', () => {
  test('default: /metrics serves the registry in Prometheus text format', async () => {
    let sessions = 3;
    const remove = collectedMetric<{ sessions: () => number }>({
      name: 'streamanchor_test_sessions',
      help: 'test sessions',
      type: 'gauge',
      read: (source) => source.sessions(),
    })({ sessions: () => sessions });
    const removeQueues = registerQueueDepths({
      records: { getJobCounts: async () => ({ waiting: 4, active: 1, delayed: 0, failed: 2 }) },
    });
    try {
      const url = await start();
      const response = await fetch(`${url}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe(registry.contentType);
      const text = await response.text();
      expect(text).toContain('# TYPE streamanchor_test_sessions gauge');
      expect(text).toContain('streamanchor_test_sessions 3');
      expect(text).toContain('streamanchor_queue_jobs{queue="records",state="waiting"} 4');
      expect(text).toContain('streamanchor_queue_jobs{queue="records",state="failed"} 2');
      expect(text).toContain('process_cpu_user_seconds_total');
      expect(text).toContain('nodejs_eventloop_lag_seconds');
      sessions = 5;
      expect(await (await fetch(`${url}/metrics`)).text()).toContain(
        'streamanchor_test_sessions 5',
      );
    } finally {
      remove();
      removeQueues();
    }
  });

  test('behavior: /readyz answers 200 when every check passes', async () => {
    const url = await start({ checks: { redis: async () => 'PONG', database: () => {} } });
    const response = await fetch(`${url}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready' });
  });

  test('behavior: /readyz answers 503 naming the failing check', async () => {
    const url = await start({
      checks: {
        redis: async () => 'PONG',
        database: async () => {
          throw new Error('connection refused');
        },
        rpc: () => new Promise(() => {}),
      },
      checkTimeoutMs: 50,
    });
    const response = await fetch(`${url}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({
      status: 'not_ready',
      checks: { redis: 'ok', database: 'connection refused', rpc: 'no answer within 50 ms' },
    });
  });

  test('behavior: /healthz answers 200; other paths 404, other methods 405', async () => {
    const url = await start();
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    expect((await fetch(`${url}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  test('behavior: port 0 starts no server', async () => {
    server = createOpsServer({ host: '127.0.0.1', port: 0, logger });
    await server.start();
    expect(server.url).toBeUndefined();
    await server.stop();
  });

  test('error: a taken port rejects start()', async () => {
    const url = await start();
    const port = Number(new URL(url).port);
    const second = createOpsServer({ host: '127.0.0.1', port, logger });
    await expect(second.start()).rejects.toThrow(/EADDRINUSE/);
  });
});
