import { describe, expect, test } from 'vitest';
import {
  candidatesOf,
  offerProblem,
  withMaxMessageSize,
  withoutCandidates,
  withoutTrickleOption,
  withPublicAddress,
} from './sdp';

const answer = [
  'v=0',
  'o=rtc 1 0 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=fingerprint:sha-256 AA:BB',
  'a=ice-ufrag:Zq7P',
  'a=ice-pwd:Pw0rdPw0rdPw0rdPw0rdPw',
  'a=ice-options:ice2,trickle',
  'm=application 50000 UDP/DTLS/SCTP webrtc-datachannel',
  'a=sctp-port:5000',
  'a=max-message-size:4097',
  'a=candidate:1 1 UDP 2114977791 172.17.0.2 50000 typ host',
  'a=candidate:2 1 UDP 2116026111 fd00::2 50000 typ host',
  'a=end-of-candidates',
  '',
].join('\r\n');

describe('sdp helpers', () => {
  test('default: a data-channel offer passes, others are explained', () => {
    expect(offerProblem(answer)).toBeUndefined();
    expect(offerProblem('hello')).toMatch(/v=0/);
    expect(
      offerProblem(answer.replace(/m=application.*\r\n/, 'm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n')),
    ).toMatch(/data channel/);
    expect(offerProblem(answer.replace(/a=fingerprint.*\r\n/, ''))).toMatch(/fingerprint/);
    // The same rules as the gateway's (one validator, checkOffer in @streamanchor/protocol).
    expect(offerProblem(answer.replace(/a=ice-ufrag.*\r\n/, ''))).toMatch(/ICE/);
    expect(offerProblem(answer.replace(/a=candidate.*\r\n/g, ''))).toBeUndefined();
  });

  test('behavior: the answer loses its trickle ICE option, and keeps the rest', () => {
    const sdp = withoutTrickleOption(answer);
    expect(sdp).toContain('a=ice-options:ice2\r\n');
    expect(sdp).toBe(answer.replace('ice2,trickle', 'ice2'));
  });

  test('behavior: offer candidates are dropped, the rest kept byte for byte', () => {
    const stripped = withoutCandidates(answer);
    expect(candidatesOf(stripped)).toEqual([]);
    expect(stripped).not.toContain('end-of-candidates');
    expect(stripped).toBe(answer.replace(/a=(candidate|end-of-candidates).*\r\n/g, ''));
  });

  test('behavior: the advertised max-message-size is replaced or added', () => {
    expect(withMaxMessageSize(answer, 4096)).toContain('a=max-message-size:4096\r\n');
    const without = answer.replace('a=max-message-size:4097\r\n', '');
    expect(withMaxMessageSize(without, 4096)).toContain(
      'a=sctp-port:5000\r\na=max-message-size:4096\r\n',
    );
  });

  test('behavior: a public address is added once per port, after the host candidates', () => {
    const sdp = withPublicAddress(answer, '203.0.113.7');
    expect(candidatesOf(sdp)).toEqual([
      'candidate:1 1 UDP 2114977791 172.17.0.2 50000 typ host',
      'candidate:pub1 1 UDP 2114977791 203.0.113.7 50000 typ host',
      'candidate:2 1 UDP 2116026111 fd00::2 50000 typ host',
    ]);
    expect(sdp.endsWith('\r\n')).toBe(true);
    // Only candidate lines are added: the rest of the answer is kept byte for byte.
    expect(sdp.replace(/a=candidate:pub\d+ .*\r\n/g, '')).toBe(answer);
  });

  test('behavior: each port gets its public copy (ephemeral ports), an LF-only answer stays LF-only', () => {
    const lf = [
      'v=0',
      'a=candidate:1 1 UDP 2114977791 10.0.0.5 50001 typ host',
      'a=candidate:2 1 UDP 2114977790 10.0.0.6 50001 typ host',
      'a=candidate:3 1 UDP 2114977789 10.0.0.5 50002 typ host',
      'a=end-of-candidates',
      '',
    ].join('\n');
    const sdp = withPublicAddress(lf, '198.51.100.9');
    expect(candidatesOf(sdp)).toEqual([
      'candidate:1 1 UDP 2114977791 10.0.0.5 50001 typ host',
      'candidate:pub1 1 UDP 2114977791 198.51.100.9 50001 typ host',
      'candidate:2 1 UDP 2114977790 10.0.0.6 50001 typ host',
      'candidate:3 1 UDP 2114977789 10.0.0.5 50002 typ host',
      'candidate:pub2 1 UDP 2114977789 198.51.100.9 50002 typ host',
    ]);
    expect(sdp).not.toContain('\r');
  });

  test('behavior: relayed and server-reflexive candidates, and a host already at the address, get no copy', () => {
    const sdp = [
      'v=0',
      'a=candidate:1 1 UDP 2114977791 203.0.113.7 50000 typ host',
      'a=candidate:2 1 UDP 1677729535 198.51.100.1 61000 typ srflx raddr 0.0.0.0 rport 0',
      'a=candidate:3 1 UDP 16777215 192.0.2.50 62000 typ relay raddr 0.0.0.0 rport 0',
      '',
    ].join('\r\n');
    expect(withPublicAddress(sdp, '203.0.113.7')).toBe(sdp);
  });
});
