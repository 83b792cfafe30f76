import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { expectProblem, startGateway, type TestGateway } from '../../test/support';

describe('problem+json for everything else', () => {
  let gateway: TestGateway;
  afterEach(async () => {
    await gateway.close();
  });

  it('default: an unknown path is 404 not_found', async () => {
    gateway = await startGateway();
    for (const url of ['/nope', '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA/extra', '/v1']) {
      expectProblem(await gateway.app.fastify.inject({ method: 'GET', url }), 'not_found');
    }
    expectProblem(await gateway.app.fastify.inject({ method: 'POST', url: '/nope' }), 'not_found');
  });

  it('behavior: a known path with another method is 405 with Allow', async () => {
    gateway = await startGateway();
    const put = await gateway.app.fastify.inject({
      method: 'PUT',
      url: '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA',
      headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
      payload: 'a=end-of-candidates\r\n',
    });
    expectProblem(put, 'method_not_allowed');
    expect(put.headers.allow).toBe('DELETE, PATCH');
    const get = await gateway.app.fastify.inject({ method: 'GET', url: '/v1/sessions' });
    expectProblem(get, 'method_not_allowed');
    expect(get.headers.allow).toBe('OPTIONS, POST');
    const postInfo = await gateway.app.fastify.inject({ method: 'POST', url: '/v1/info' });
    expectProblem(postInfo, 'method_not_allowed');
    expect(postInfo.headers.allow).toBe('GET, HEAD');
  });

  it('error: malformed URLs and unparseable HTTP are 400 problems, and the gateway keeps serving', async () => {
    gateway = await startGateway();
    const { url } = await gateway.app.start();
    const badUrl = await fetch(`${url}/v1/sessions/%E0%A4%A`, { method: 'DELETE' });
    expectProblem(
      {
        statusCode: badUrl.status,
        headers: Object.fromEntries(badUrl.headers),
        body: await badUrl.text(),
      },
      'bad_request',
    );

    const { port } = new URL(url);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      let received = '';
      socket.on('data', (chunk) => {
        received += chunk.toString();
      });
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
      socket.write(
        'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nBad Header Line\r\n\r\n',
      );
    });
    const [head, body] = raw.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/Content-Type: application\/problem\+json/i);
    expectProblem(
      {
        statusCode: 400,
        headers: { 'content-type': 'application/problem+json' },
        body: body ?? '',
      },
      'bad_request',
    );

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
  });
});
