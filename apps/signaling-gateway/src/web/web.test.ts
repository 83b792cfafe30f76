import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  expectProblem,
  OFFER_SDP,
  startFakeRelay,
  startGateway,
  type TestGateway,
} from '../../test/support';

describe('demo page', () => {
  let dir: string;
  let gateway: TestGateway;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sa-web-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>StreamAnchor demo</title>');
    writeFileSync(join(dir, 'app.js'), 'console.log("demo");');
  });
  afterEach(async () => {
    await gateway?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('default: WEB_DIST_DIR is served at / (index.html) next to the API', async () => {
    gateway = await startGateway({ WEB_DIST_DIR: dir });
    const index = await gateway.app.fastify.inject({ method: 'GET', url: '/' });
    expect(index.statusCode).toBe(200);
    expect(index.headers['content-type']).toMatch(/^text\/html/);
    expect(index.body).toContain('StreamAnchor demo');
    const script = await gateway.app.fastify.inject({ method: 'GET', url: '/app.js' });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toMatch(/javascript/);
    const info = await gateway.app.fastify.inject({ method: 'GET', url: '/v1/info' });
    expect(info.statusCode).toBe(200);
    // Stand-in for rtc-relay (see startFakeRelay): the API still works beside the files.
    const relay = await startFakeRelay(gateway);
    try {
      const created = await gateway.app.fastify.inject({
        method: 'POST',
        url: '/v1/sessions',
        headers: {
          'content-type': 'application/sdp',
          authorization: `Bearer ${await gateway.token()}`,
        },
        payload: OFFER_SDP,
      });
      expect(created.statusCode).toBe(201);
    } finally {
      await relay.close();
    }
  });

  it('behavior: without WEB_DIST_DIR, / is a 404 problem', async () => {
    gateway = await startGateway();
    expectProblem(await gateway.app.fastify.inject({ method: 'GET', url: '/' }), 'not_found');
  });

  it('error: a missing file, or a path outside the directory, is a 404 problem', async () => {
    gateway = await startGateway({ WEB_DIST_DIR: dir });
    expectProblem(
      await gateway.app.fastify.inject({ method: 'GET', url: '/missing.js' }),
      'not_found',
    );
    expectProblem(
      await gateway.app.fastify.inject({ method: 'GET', url: '/../../etc/passwd' }),
      'not_found',
    );
    expectProblem(
      await gateway.app.fastify.inject({ method: 'GET', url: '/%2e%2e/%2e%2e/etc/passwd' }),
      'not_found',
    );
    const get = await gateway.app.fastify.inject({ method: 'GET', url: '/v1/sessions' });
    expectProblem(get, 'method_not_allowed');
  });
});
