import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { getFreePort, runTurnserver, stunBindingAnswered } from '@streamanchor/testing';

export interface Coturn {
  port: number;
  realm: string;
  /** What coturn printed (for failure messages). */
  log(): string;
  close(): Promise<void>;
}

/**
 * A real coturn on 127.0.0.1 with the TURN REST scheme (`use-auth-secret`,
 * `static-auth-secret`), plain UDP/TCP only, loopback peers allowed, no CLI, no config file.
 * Resolves once it answers a STUN Binding request.
 */
export async function startCoturn({
  secret,
  realm = 'streamanchor.test',
}: {
  secret: string;
  realm?: string;
}): Promise<Coturn> {
  const port = await getFreePort();
  const relayBase = 40_000 + Math.floor(Math.random() * 20_000);
  const turnserver = await runTurnserver({
    args: () => [
      '-n',
      '--listening-ip=127.0.0.1',
      '--relay-ip=127.0.0.1',
      `--listening-port=${port}`,
      `--min-port=${relayBase}`,
      `--max-port=${relayBase + 20}`,
      '--use-auth-secret',
      `--static-auth-secret=${secret}`,
      `--realm=${realm}`,
      '--no-tls',
      '--no-dtls',
      '--no-cli',
      '--allow-loopback-peers',
      '--log-file=stdout',
      '--simple-log',
    ],
    ready: () => stunBindingAnswered('127.0.0.1', port, 200),
    timeoutMs: 5000,
  });
  return { port, realm, log: turnserver.log, close: turnserver.close };
}

// A STUN/TURN client just large enough for one Allocate (RFC 8489, RFC 8656).
const MAGIC_COOKIE = 0x2112a442;
const ALLOCATE_REQUEST = 0x0003;
const ALLOCATE_SUCCESS = 0x0103;
const ALLOCATE_ERROR = 0x0113;
const ATTR = {
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  LIFETIME: 0x000d,
  REALM: 0x0014,
  NONCE: 0x0015,
  XOR_RELAYED_ADDRESS: 0x0016,
  REQUESTED_TRANSPORT: 0x0019,
} as const;

type Attribute = [type: number, value: Buffer];

function stunMessage(type: number, attributes: Attribute[], integrityKey?: Buffer): Buffer {
  const body = Buffer.concat(
    attributes.map(([attrType, value]) => {
      const header = Buffer.alloc(4);
      header.writeUInt16BE(attrType, 0);
      header.writeUInt16BE(value.length, 2);
      const padding = Buffer.alloc((4 - (value.length % 4)) % 4);
      return Buffer.concat([header, value, padding]);
    }),
  );
  const header = Buffer.alloc(20);
  header.writeUInt16BE(type, 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  randomBytes(12).copy(header, 8);
  if (!integrityKey) {
    header.writeUInt16BE(body.length, 2);
    return Buffer.concat([header, body]);
  }
  // MESSAGE-INTEGRITY covers the message up to itself, its length counting the attribute.
  header.writeUInt16BE(body.length + 24, 2);
  const hmac = createHmac('sha1', integrityKey).update(header).update(body).digest();
  const attrHeader = Buffer.alloc(4);
  attrHeader.writeUInt16BE(ATTR.MESSAGE_INTEGRITY, 0);
  attrHeader.writeUInt16BE(20, 2);
  return Buffer.concat([header, body, attrHeader, hmac]);
}

interface StunAnswer {
  type: number;
  attributes: Map<number, Buffer>;
}

function parseStun(message: Buffer): StunAnswer {
  const attributes = new Map<number, Buffer>();
  const length = message.readUInt16BE(2);
  let offset = 20;
  while (offset + 4 <= 20 + length) {
    const type = message.readUInt16BE(offset);
    const size = message.readUInt16BE(offset + 2);
    if (!attributes.has(type))
      attributes.set(type, message.subarray(offset + 4, offset + 4 + size));
    offset += 4 + size + ((4 - (size % 4)) % 4);
  }
  return { type: message.readUInt16BE(0), attributes };
}

/** A UDP socket for STUN transactions, one at a time (coturn binds a nonce to the 5-tuple). */
function stunClient(port: number) {
  const socket = createSocket('udp4');
  return {
    request(message: Buffer, timeoutMs: number): Promise<StunAnswer> {
      return new Promise((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          socket.off('message', onMessage);
          socket.off('error', onError);
        };
        const onMessage = (answer: Buffer) => {
          done();
          resolve(parseStun(answer));
        };
        const onError = (error: Error) => {
          done();
          reject(error);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no STUN answer within ${timeoutMs} ms`));
        }, timeoutMs);
        socket.on('message', onMessage);
        socket.on('error', onError);
        socket.send(message, port, '127.0.0.1');
      });
    },
    close: () => socket.close(),
  };
}

export type AllocateResult =
  | { ok: true; relayedPort: number; lifetimeS: number }
  | { ok: false; errorCode: number; reason: string };

/**
 * A TURN Allocate (UDP) with long-term credentials, as a WebRTC stack does it: a first
 * request without credentials draws `401` with REALM and NONCE; the second carries USERNAME,
 * REALM, NONCE and MESSAGE-INTEGRITY keyed with MD5(username:realm:credential). Resolves
 * with the relayed address's port, or the error code of the second answer.
 */
export async function turnAllocate({
  port,
  username,
  credential,
}: {
  port: number;
  username: string;
  credential: string;
}): Promise<AllocateResult> {
  const client = stunClient(port);
  try {
    return await allocate(client, username, credential);
  } finally {
    client.close();
  }
}

async function allocate(
  client: ReturnType<typeof stunClient>,
  username: string,
  credential: string,
): Promise<AllocateResult> {
  const transport: Attribute = [ATTR.REQUESTED_TRANSPORT, Buffer.from([17, 0, 0, 0])];
  const challenge = await client.request(stunMessage(ALLOCATE_REQUEST, [transport]), 2000);
  const realm = challenge.attributes.get(ATTR.REALM);
  const nonce = challenge.attributes.get(ATTR.NONCE);
  if (challenge.type !== ALLOCATE_ERROR || !realm || !nonce) {
    throw new Error(`expected a 401 challenge, got message type 0x${challenge.type.toString(16)}`);
  }
  const key = createHash('md5').update(`${username}:${realm.toString()}:${credential}`).digest();
  const answer = await client.request(
    stunMessage(
      ALLOCATE_REQUEST,
      [transport, [ATTR.USERNAME, Buffer.from(username)], [ATTR.REALM, realm], [ATTR.NONCE, nonce]],
      key,
    ),
    2000,
  );
  if (answer.type === ALLOCATE_SUCCESS) {
    const relayed = answer.attributes.get(ATTR.XOR_RELAYED_ADDRESS);
    const lifetime = answer.attributes.get(ATTR.LIFETIME);
    return {
      ok: true,
      relayedPort: relayed ? relayed.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16) : 0,
      lifetimeS: lifetime ? lifetime.readUInt32BE(0) : 0,
    };
  }
  const error = answer.attributes.get(ATTR.ERROR_CODE);
  if (answer.type !== ALLOCATE_ERROR || !error) {
    throw new Error(`unexpected answer type 0x${answer.type.toString(16)}`);
  }
  return {
    ok: false,
    errorCode: (error[2]! & 0x7) * 100 + error[3]!,
    reason: error.subarray(4).toString(),
  };
}
