/**
 * A hand-built ICE connectivity check (RFC 8445 §7.2.2, STUN RFC 8489): what a browser sends
 * to the relay's ICE port, with each attribute under the test's control, so a test can send
 * the checks real peers send (e.g. Chromium's over TURN/TCP, whose tiebreaker is 0) and read
 * the relay's answer.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { crc32 } from 'node:zlib';

const MAGIC_COOKIE = 0x2112a442;
const FINGERPRINT_XOR = 0x5354554e;

const attribute = {
  username: 0x0006,
  messageIntegrity: 0x0008,
  errorCode: 0x0009,
  priority: 0x0024,
  useCandidate: 0x0025,
  fingerprint: 0x8028,
  iceControlled: 0x8029,
  iceControlling: 0x802a,
} as const;

export interface ConnectivityCheck {
  host: string;
  port: number;
  /** `<receiver's ufrag>:<sender's ufrag>` (RFC 8445 §7.2.2). */
  username: string;
  /** The receiver's ice-pwd: the MESSAGE-INTEGRITY key. */
  password: string;
  /** ICE-CONTROLLING with this tiebreaker (0n is a valid value, RFC 8445 §16.1). */
  controlling?: bigint;
  /** ICE-CONTROLLED with this tiebreaker. */
  controlled?: bigint;
  useCandidate?: boolean;
  timeoutMs?: number;
}

export type CheckAnswer =
  | { kind: 'success' }
  | { kind: 'error'; code: number; reason: string }
  | { kind: 'timeout' };

function tlv(type: number, value: Buffer): Buffer {
  const padded = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  padded.writeUInt16BE(type, 0);
  padded.writeUInt16BE(value.length, 2);
  value.copy(padded, 4);
  return padded;
}

function uint64(value: bigint): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64BE(value);
  return buffer;
}

/** A Binding request with MESSAGE-INTEGRITY and FINGERPRINT over exactly the given attributes. */
export function encodeConnectivityCheck(
  check: ConnectivityCheck,
  transactionId: Buffer = randomBytes(12),
): Buffer {
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(0x6e7f1eff);
  const parts = [
    tlv(attribute.username, Buffer.from(check.username)),
    tlv(attribute.priority, priority),
  ];
  if (check.controlling !== undefined)
    parts.push(tlv(attribute.iceControlling, uint64(check.controlling)));
  if (check.controlled !== undefined)
    parts.push(tlv(attribute.iceControlled, uint64(check.controlled)));
  if (check.useCandidate) parts.push(tlv(attribute.useCandidate, Buffer.alloc(0)));
  const header = Buffer.alloc(20);
  header.writeUInt16BE(0x0001, 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  const body = Buffer.concat(parts);
  // MESSAGE-INTEGRITY covers everything before it, with the length already counting it (24).
  header.writeUInt16BE(body.length + 24, 2);
  const hmac = createHmac('sha1', check.password).update(header).update(body).digest();
  const withIntegrity = Buffer.concat([header, body, tlv(attribute.messageIntegrity, hmac)]);
  // FINGERPRINT likewise, with the length counting its own 8 bytes.
  withIntegrity.writeUInt16BE(body.length + 24 + 8, 2);
  const fingerprint = Buffer.alloc(4);
  fingerprint.writeUInt32BE((crc32(withIntegrity) ^ FINGERPRINT_XOR) >>> 0);
  return Buffer.concat([withIntegrity, tlv(attribute.fingerprint, fingerprint)]);
}

/** The class of a Binding response to `transactionId`, with ERROR-CODE read off an error. */
export function decodeCheckAnswer(message: Buffer, transactionId: Buffer): CheckAnswer | undefined {
  if (message.length < 20 || message.readUInt32BE(4) !== MAGIC_COOKIE) return undefined;
  if (!message.subarray(8, 20).equals(transactionId)) return undefined;
  const type = message.readUInt16BE(0);
  if (type === 0x0101) return { kind: 'success' };
  if (type !== 0x0111) return undefined;
  for (let at = 20; at + 4 <= message.length; ) {
    const attributeType = message.readUInt16BE(at);
    const length = message.readUInt16BE(at + 2);
    if (attributeType === attribute.errorCode) {
      const value = message.subarray(at + 4, at + 4 + length);
      return {
        kind: 'error',
        code: (value[2]! & 0x07) * 100 + value[3]!,
        reason: value.subarray(4).toString('utf8'),
      };
    }
    at += 4 + Math.ceil(length / 4) * 4;
  }
  return { kind: 'error', code: 0, reason: 'no ERROR-CODE attribute' };
}

/** Sends one connectivity check from a fresh UDP socket and waits for its answer. */
export function sendConnectivityCheck(check: ConnectivityCheck): Promise<CheckAnswer> {
  const transactionId = randomBytes(12);
  const request = encodeConnectivityCheck(check, transactionId);
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    const done = (answer: CheckAnswer) => {
      clearTimeout(timer);
      socket.close();
      resolve(answer);
    };
    const timer = setTimeout(() => done({ kind: 'timeout' }), check.timeoutMs ?? 2_000);
    socket.on('message', (message) => {
      const answer = decodeCheckAnswer(message, transactionId);
      if (answer) done(answer);
    });
    socket.send(request, check.port, check.host);
  });
}
