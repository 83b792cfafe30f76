import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { problem } from '@streamanchor/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from './connect';
import { SessionRequestError } from './errors';
import { nodeDataChannelIceServers } from './node-datachannel';
import { fetchIceServers } from './signaling';

// A real HTTP server on loopback stands in for the gateway (the gateway has its own tests of
// the Link headers, src/ice/delivery.test.ts). Node has no RTCPeerConnection: a stand-in
// records the configuration connect() builds it with; the POST is refused, so connect stops
// right after the offer (the WebRTC path itself runs in the end-to-end tests).
let server: Server | undefined;
const seen: { method: string; authorization: string | undefined }[] = [];

async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<string> {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push({ method: req.method!, authorization: req.headers.authorization });
      handler(req, res);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  seen.length = 0;
  const running = server;
  server = undefined;
  if (!running) return;
  running.closeAllConnections();
  await new Promise((resolve) => running.close(resolve));
});

const TURN_LINK =
  '<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="1893456000:alice"; credential="c+d/e="; credential-type="password"';
const STUN_LINK = '<stun:stun.example.net:3478>; rel="ice-server"';

/** The gateway: OPTIONS answers `options`, POST is refused with 401. */
function gateway(options: (res: ServerResponse) => void) {
  return serve((req, res) => {
    if (req.method === 'OPTIONS') return options(res);
    res.writeHead(401, { 'content-type': 'application/problem+json' });
    res.end(JSON.stringify(problem('unauthorized', 'test stops here')));
  });
}

class FakePeerConnection extends EventTarget {
  iceGatheringState: RTCIceGatheringState = 'complete';
  localDescription: { type: string; sdp: string } | null = null;
  constructor(readonly config: RTCConfiguration) {
    super();
  }
  createDataChannel() {
    return Object.assign(new EventTarget(), { readyState: 'connecting', close() {} });
  }
  async createOffer() {
    return { type: 'offer', sdp: 'v=0\r\n' };
  }
  async setLocalDescription(description: { type: string; sdp: string }) {
    this.localDescription = description;
  }
  close() {}
}

async function connectWith(baseUrl: string, extra: Parameters<typeof connect>[0] | object = {}) {
  const made: FakePeerConnection[] = [];
  const error = await connect({
    baseUrl,
    token: 'tok',
    createPeerConnection: (config) => {
      const pc = new FakePeerConnection(config);
      made.push(pc);
      return pc as unknown as RTCPeerConnection;
    },
    ...extra,
  }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(SessionRequestError);
  expect(made).toHaveLength(1);
  return made[0]!.config;
}

describe('connect: ICE servers from the gateway', () => {
  it('default: asks OPTIONS with the token before the offer and builds the peer with them', async () => {
    const base = await gateway((res) => {
      res.writeHead(204, { link: [STUN_LINK, TURN_LINK] }).end();
    });
    const config = await connectWith(base, {
      iceServers: [{ urls: 'stun:own.example.net' }],
    });
    expect(seen).toEqual([
      { method: 'OPTIONS', authorization: 'Bearer tok' },
      { method: 'POST', authorization: 'Bearer tok' },
    ]);
    expect(config.iceServers).toEqual([
      { urls: 'stun:own.example.net' },
      { urls: 'stun:stun.example.net:3478' },
      {
        urls: 'turn:turn.example.net:3478?transport=udp',
        username: '1893456000:alice',
        credential: 'c+d/e=',
      },
    ]);
  });

  it('behavior: fetchIceServers false skips the OPTIONS', async () => {
    const base = await gateway((res) => res.writeHead(204, { link: TURN_LINK }).end());
    const config = await connectWith(base, { fetchIceServers: false });
    expect(seen.map((request) => request.method)).toEqual(['POST']);
    expect(config.iceServers).toEqual([]);
  });

  it('error: a refused OPTIONS leaves the servers out, and the POST says what is wrong', async () => {
    const base = await gateway((res) => {
      res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '1' });
      res.end(JSON.stringify(problem('rate_limited')));
    });
    const config = await connectWith(base);
    expect(seen.map((request) => request.method)).toEqual(['OPTIONS', 'POST']);
    expect(config.iceServers).toEqual([]);
  });
});

describe('fetchIceServers', () => {
  it('error: a refusal rejects with the problem', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify(problem('unauthorized', 'expired')));
    });
    await expect(fetchIceServers({ baseUrl: base, token: 'old' })).rejects.toMatchObject({
      status: 401,
      code: 'unauthorized',
    });
  });
});

describe('nodeDataChannelIceServers', () => {
  it('default: percent-encodes username and credential, leaves the URLs', () => {
    expect(
      nodeDataChannelIceServers([
        { urls: 'stun:stun.example.net' },
        { urls: ['turn:t.example:3478'], username: '1893456000:alice', credential: 'c+d/e=' },
      ]),
    ).toEqual([
      { urls: 'stun:stun.example.net' },
      {
        urls: ['turn:t.example:3478'],
        username: '1893456000%3Aalice',
        credential: 'c%2Bd%2Fe%3D',
      },
    ]);
    expect(nodeDataChannelIceServers(undefined)).toEqual([]);
  });
});
