import { afterEach, describe, expect, it } from 'vitest';
import {
  expectProblem,
  OFFER_SDP,
  startFakeRelay,
  startGateway,
  type TestGateway,
} from '../../test/support';

const ORIGIN = 'https://demo.example';

describe('CORS', () => {
  let gateway: TestGateway;
  afterEach(async () => {
    await gateway.close();
  });

  it('default: off unless CORS_ORIGINS is set (the demo page is same-origin)', async () => {
    gateway = await startGateway();
    const response = await gateway.app.fastify.inject({
      method: 'GET',
      url: '/v1/info',
      headers: { origin: ORIGIN },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('behavior: an allowed origin gets preflights answered and Location/ETag exposed', async () => {
    gateway = await startGateway({ CORS_ORIGINS: `${ORIGIN}, https://other.example` });
    const preflight = await gateway.app.fastify.inject({
      method: 'OPTIONS',
      url: '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'DELETE',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(preflight.headers['access-control-allow-methods']).toContain('DELETE');
    expect(String(preflight.headers['access-control-allow-headers']).toLowerCase()).toContain(
      'authorization',
    );

    const sessionsPreflight = await gateway.app.fastify.inject({
      method: 'OPTIONS',
      url: '/v1/sessions',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST' },
    });
    expect(sessionsPreflight.statusCode).toBe(204);
    expect(sessionsPreflight.headers['accept-post']).toBe('application/sdp');
    expect(sessionsPreflight.headers['access-control-allow-methods']).toContain('POST');

    // Stand-in for rtc-relay (see startFakeRelay).
    const relay = await startFakeRelay(gateway);
    try {
      const created = await gateway.app.fastify.inject({
        method: 'POST',
        url: '/v1/sessions',
        headers: {
          origin: ORIGIN,
          'content-type': 'application/sdp',
          authorization: `Bearer ${await gateway.token()}`,
        },
        payload: OFFER_SDP,
      });
      expect(created.statusCode).toBe(201);
      expect(created.headers['access-control-allow-origin']).toBe(ORIGIN);
      const exposed = String(created.headers['access-control-expose-headers']);
      for (const header of ['Location', 'ETag', 'Link']) expect(exposed).toContain(header);
    } finally {
      await relay.close();
    }

    // Errors carry the CORS headers too, so a browser script can read the problem.
    const refused = await gateway.app.fastify.inject({
      method: 'POST',
      url: '/v1/sessions',
      headers: { origin: ORIGIN },
    });
    expectProblem(refused, 'unauthorized');
    expect(refused.headers['access-control-allow-origin']).toBe(ORIGIN);
  });

  it('error: another origin gets no CORS headers', async () => {
    gateway = await startGateway({ CORS_ORIGINS: ORIGIN });
    const preflight = await gateway.app.fastify.inject({
      method: 'OPTIONS',
      url: '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'DELETE' },
    });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    expectProblem(preflight, 'method_not_allowed');
  });

  it('behavior: a preflight for trickle ICE allows PATCH and If-Match, and Accept-Patch is exposed', async () => {
    gateway = await startGateway({ CORS_ORIGINS: ORIGIN });
    const preflight = await gateway.app.fastify.inject({
      method: 'OPTIONS',
      url: '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'PATCH',
        'access-control-request-headers': 'authorization, content-type, if-match',
      },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-methods']).toContain('PATCH');
    expect(preflight.headers['access-control-allow-headers']).toContain('If-Match');
    expect(preflight.headers['access-control-expose-headers']).toContain('Accept-Patch');
    expect(preflight.headers['access-control-expose-headers']).toContain('ETag');
  });
});
