import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createCloudflareProvider,
  createFallbackProvider,
  createStaticProvider,
  IceProviderError,
} from './providers';

// Cloudflare's TURN API (rtc.live.cloudflare.com) cannot be reached from here, so these tests
// run the provider against a LOCAL HTTP SERVER THAT MOCKS IT: it speaks the request and the
// response documented on developers.cloudflare.com/realtime/turn/generate-credentials/
// (POST …/v1/turn/keys/<key id>/credentials/generate-ice-servers, bearer token, {"ttl": s};
// 201 with {"iceServers": [...]}). Nothing here proves the real service still answers so.

const KEY_ID = 'key-0123';
const TOKEN = 'api-token-abc';
const NOW = Date.UTC(2030, 0, 1, 12, 0, 0);

/** The body of the documentation's example answer. */
const DOCUMENTED_ANSWER = {
  iceServers: [
    { urls: ['stun:stun.cloudflare.com:3478', 'stun:stun.cloudflare.com:53'] },
    {
      urls: [
        'turn:turn.cloudflare.com:3478?transport=udp',
        'turn:turn.cloudflare.com:53?transport=udp',
        'turn:turn.cloudflare.com:3478?transport=tcp',
        'turn:turn.cloudflare.com:80?transport=tcp',
        'turns:turn.cloudflare.com:5349?transport=tcp',
        'turns:turn.cloudflare.com:443?transport=tcp',
      ],
      username: 'bc91b63e2b5d759f8eb9f3b58062439e0a0e1589',
      credential: 'ebd71f1d3edbc2b0edae3cd5a6d82284aeb5c3b8',
    },
  ],
};

interface Received {
  method: string;
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

interface FakeCloudflare {
  baseUrl: string;
  received: Received[];
  close(): Promise<void>;
}

async function startFakeCloudflare(
  answer: (request: Received) => { status: number; body: string } | 'hang',
): Promise<FakeCloudflare> {
  const received: Received[] = [];
  const server: Server = createServer(async (req: IncomingMessage, res) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const request: Received = {
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      body: text ? JSON.parse(text) : undefined,
    };
    received.push(request);
    const reply = answer(request);
    if (reply === 'hang') return;
    res.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('Cloudflare provider (against a local mock of Cloudflare TURN API)', () => {
  let cloudflare: FakeCloudflare | undefined;
  afterEach(async () => {
    await cloudflare?.close();
    cloudflare = undefined;
  });

  it('default: POSTs {ttl} with the bearer token to generate-ice-servers and returns its servers', async () => {
    cloudflare = await startFakeCloudflare(() => ({
      status: 201,
      body: JSON.stringify(DOCUMENTED_ANSWER),
    }));
    const provider = createCloudflareProvider({
      keyId: KEY_ID,
      apiToken: TOKEN,
      ttlS: 3600,
      baseUrl: cloudflare.baseUrl,
      now: () => NOW,
    });
    const servers = await provider.iceServers({ subject: 'alice' });
    expect(cloudflare.received).toEqual([
      {
        method: 'POST',
        url: `/v1/turn/keys/${KEY_ID}/credentials/generate-ice-servers`,
        authorization: `Bearer ${TOKEN}`,
        contentType: 'application/json',
        body: { ttl: 3600 },
      },
    ]);
    // Port 53 entries are dropped (browsers block that port, as Cloudflare's docs warn).
    expect(servers).toEqual([
      { urls: ['stun:stun.cloudflare.com:3478'] },
      {
        urls: [
          'turn:turn.cloudflare.com:3478?transport=udp',
          'turn:turn.cloudflare.com:3478?transport=tcp',
          'turn:turn.cloudflare.com:80?transport=tcp',
          'turns:turn.cloudflare.com:5349?transport=tcp',
          'turns:turn.cloudflare.com:443?transport=tcp',
        ],
        username: DOCUMENTED_ANSWER.iceServers[1]!.username,
        credential: DOCUMENTED_ANSWER.iceServers[1]!.credential,
      },
    ]);
    expect(provider.credentialsIssued).toBe(1);
  });

  it('behavior: the ttl asked for is cut at notAfter and at 48 hours', async () => {
    cloudflare = await startFakeCloudflare(() => ({
      status: 200,
      body: JSON.stringify(DOCUMENTED_ANSWER),
    }));
    const provider = createCloudflareProvider({
      keyId: KEY_ID,
      apiToken: TOKEN,
      ttlS: 172_800,
      baseUrl: `${cloudflare.baseUrl}/`,
      now: () => NOW,
    });
    await provider.iceServers({ subject: 'alice', notAfter: NOW + 120_900 });
    await provider.iceServers({ subject: 'alice' });
    await provider.iceServers({ subject: 'alice', notAfter: NOW - 5000 });
    expect(cloudflare.received.map((request) => request.body)).toEqual([
      { ttl: 120 },
      { ttl: 172_800 },
      { ttl: 1 },
    ]);
    expect(provider.credentialsIssued).toBe(3);
  });

  it('error: an error status rejects with IceProviderError carrying it', async () => {
    cloudflare = await startFakeCloudflare(() => ({
      status: 401,
      body: JSON.stringify({
        success: false,
        errors: [{ code: 10000, message: 'Authentication error' }],
      }),
    }));
    const provider = createCloudflareProvider({
      keyId: KEY_ID,
      apiToken: 'wrong',
      ttlS: 3600,
      baseUrl: cloudflare.baseUrl,
    });
    const error = await provider.iceServers({ subject: 'alice' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IceProviderError);
    expect((error as IceProviderError).details).toEqual({ provider: 'cloudflare', status: 401 });
    expect((error as IceProviderError).shortMessage).toMatch(
      /answered 401: .*Authentication error/,
    );
    expect(provider.credentialsIssued).toBe(0);
  });

  it('error: an answer without an iceServers list rejects', async () => {
    for (const body of ['not json', '{}', '{"iceServers":[]}', '{"iceServers":[{"urls":7}]}']) {
      await cloudflare?.close();
      cloudflare = await startFakeCloudflare(() => ({ status: 201, body }));
      const provider = createCloudflareProvider({
        keyId: KEY_ID,
        apiToken: TOKEN,
        ttlS: 3600,
        baseUrl: cloudflare.baseUrl,
      });
      await expect(provider.iceServers({ subject: 'alice' })).rejects.toThrow(
        /answered no iceServers list/,
      );
    }
  });

  it('error: an API that does not answer in time, or cannot be reached, rejects', async () => {
    cloudflare = await startFakeCloudflare(() => 'hang');
    const slow = createCloudflareProvider({
      keyId: KEY_ID,
      apiToken: TOKEN,
      ttlS: 3600,
      baseUrl: cloudflare.baseUrl,
      timeoutMs: 100,
    });
    await expect(slow.iceServers({ subject: 'alice' })).rejects.toThrow(
      /could not be reached: .*(timeout|aborted)/i,
    );
    const { baseUrl } = cloudflare;
    await cloudflare.close();
    cloudflare = undefined;
    const gone = createCloudflareProvider({ keyId: KEY_ID, apiToken: TOKEN, ttlS: 3600, baseUrl });
    await expect(gone.iceServers({ subject: 'alice' })).rejects.toBeInstanceOf(IceProviderError);
  });

  it('behavior: with the fallback, a failing API yields the static list, and the error is reported', async () => {
    cloudflare = await startFakeCloudflare(() => ({ status: 503, body: '{}' }));
    const errors: unknown[] = [];
    const provider = createFallbackProvider(
      createCloudflareProvider({
        keyId: KEY_ID,
        apiToken: TOKEN,
        ttlS: 3600,
        baseUrl: cloudflare.baseUrl,
      }),
      createStaticProvider([{ urls: ['stun:stun.example.net:3478'] }]),
      { onError: (error) => errors.push(error) },
    );
    expect(await provider.iceServers({ subject: 'alice' })).toEqual([
      { urls: ['stun:stun.example.net:3478'] },
    ]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(IceProviderError);
    expect(provider.fallbacks).toBe(1);
    expect(provider.credentialsIssued).toBe(0);
  });
});
