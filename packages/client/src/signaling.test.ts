import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { problem } from '@streamanchor/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectError, SessionRequestError } from './errors';
import { deleteSessionResource, postOffer, sessionsUrl } from './signaling';

// A real HTTP server on loopback stands in for the gateway (the gateway has its own tests).
let server: Server | undefined;
const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] =
  [];

async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<string> {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(req, res);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function stopServer(): Promise<void> {
  const running = server;
  server = undefined;
  if (!running) return;
  running.closeAllConnections();
  await new Promise((resolve) => running.close(resolve));
}

afterEach(async () => {
  seen.length = 0;
  await stopServer();
});

const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n';

describe('postOffer', () => {
  it('default: posts the SDP with the bearer token and reads answer, Location, ETag and Link', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(201, {
        'content-type': 'application/sdp',
        location: '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA',
        etag: '"abc"',
        link: '<stun:stun.example.net>; rel="ice-server"',
      });
      res.end('v=0\r\nanswer\r\n');
    });
    const resource = await postOffer({ baseUrl: `${base}/`, token: 'tok', offerSdp: OFFER });
    expect(resource).toEqual({
      answerSdp: 'v=0\r\nanswer\r\n',
      url: `${base}/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA`,
      etag: '"abc"',
      iceServers: [{ urls: 'stun:stun.example.net' }],
    });
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/v1/sessions', body: OFFER });
    expect(seen[0]!.headers['content-type']).toBe('application/sdp');
    expect(seen[0]!.headers.authorization).toBe('Bearer tok');
  });

  it('error: a problem+json refusal becomes a SessionRequestError', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify(problem('unauthorized', 'bad signature')));
    });
    const error = await postOffer({ baseUrl: base, token: 'bad', offerSdp: OFFER }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SessionRequestError);
    expect(error).toMatchObject({ status: 401, code: 'unauthorized', detail: 'bad signature' });
  });

  it('error: a 201 without Location is a ConnectError', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/sdp' });
      res.end('v=0\r\n');
    });
    await expect(postOffer({ baseUrl: base, token: 't', offerSdp: OFFER })).rejects.toBeInstanceOf(
      ConnectError,
    );
  });

  it('error: an unreachable gateway is a ConnectError', async () => {
    const base = await serve(() => undefined);
    await stopServer();
    await expect(postOffer({ baseUrl: base, token: 't', offerSdp: OFFER })).rejects.toBeInstanceOf(
      ConnectError,
    );
  });

  it('behavior: keeps a path prefix of baseUrl', () => {
    expect(sessionsUrl('https://example.com/anchor/')).toBe(
      'https://example.com/anchor/v1/sessions',
    );
  });
});

describe('deleteSessionResource', () => {
  it('default: sends DELETE with the token; 204 and 404 both succeed', async () => {
    let status = 204;
    const base = await serve((_req, res) => {
      res.writeHead(status);
      res.end();
    });
    await deleteSessionResource({ url: `${base}/v1/sessions/x`, token: 'tok' });
    status = 404;
    await deleteSessionResource({ url: `${base}/v1/sessions/x`, token: 'tok' });
    expect(seen.map((request) => [request.method, request.headers.authorization])).toEqual([
      ['DELETE', 'Bearer tok'],
      ['DELETE', 'Bearer tok'],
    ]);
  });

  it('error: other failures reject with the problem', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify(problem('forbidden')));
    });
    await expect(
      deleteSessionResource({ url: `${base}/v1/sessions/x`, token: 't' }),
    ).rejects.toMatchObject({
      status: 403,
      code: 'forbidden',
    });
  });
});
