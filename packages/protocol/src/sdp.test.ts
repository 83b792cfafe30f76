import { describe, expect, test } from 'vitest';
import { LIMITS } from './constants';
import { checkOffer, ifMatchSatisfied, parseTrickleFragment, withoutTrickleOption } from './sdp';

/** A Chrome offer (trickle: no candidates yet). */
const OFFER = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:Kd8s',
  'a=ice-pwd:9cBnR4vBF4mSgHkYQ0mU7f5q',
  'a=ice-options:trickle',
  'a=fingerprint:sha-256 5B:6C:81:2E:36:46:44:A3:0C:1B:D5:76:0A:F8:3F:10:99:8A:19:71:96:2F:8C:37:21:5D:1A:0B:2E:49:55:D1',
  'a=setup:actpass',
  'a=mid:0',
  'a=sctp-port:5000',
  'a=max-message-size:262144',
  '',
].join('\r\n');

const without = (prefix: string) =>
  OFFER.split('\r\n')
    .filter((line) => !line.startsWith(prefix))
    .join('\r\n');

describe('checkOffer', () => {
  test('default: a data-channel offer passes, with or without candidates, CRLF or LF', () => {
    expect(checkOffer(OFFER)).toEqual({ ok: true });
    const withCandidate = OFFER.replace(
      'a=ice-ufrag',
      'a=candidate:1 1 udp 2122260223 192.168.1.10 46243 typ host\r\na=ice-ufrag',
    );
    expect(checkOffer(withCandidate)).toEqual({ ok: true });
    expect(checkOffer(OFFER.replaceAll('\r\n', '\n'))).toEqual({ ok: true });
    // Firefox's form: 8-hex ufrag, 32-hex pwd, sha-256 fingerprint.
    expect(
      checkOffer(
        OFFER.replace('a=ice-ufrag:Kd8s', 'a=ice-ufrag:1a2b3c4d').replace(
          'a=ice-pwd:9cBnR4vBF4mSgHkYQ0mU7f5q',
          'a=ice-pwd:0123456789abcdef0123456789abcdef',
        ),
      ),
    ).toEqual({ ok: true });
  });

  test('error: each broken rule is explained, never thrown', () => {
    const cases: [string, unknown, RegExp][] = [
      ['not a string', 42, /not text/],
      ['empty', '', /empty/],
      ['blank', '  \r\n', /empty/],
      ['too large', OFFER + `a=x:${'z'.repeat(LIMITS.maxSdpBytes)}\r\n`, /larger/],
      ['too large in bytes', OFFER + `a=x:${'é'.repeat(LIMITS.maxSdpBytes / 2)}\r\n`, /larger/],
      ['lone surrogate', OFFER.replace('s=-', 's=\ud800'), /UTF-8/],
      ['replacement character', OFFER.replace('s=-', 's=\ufffd'), /UTF-8/],
      ['control character', OFFER.replace('s=-', 's=\u0000-'), /control/],
      ['no v=0', OFFER.replace('v=0\r\n', ''), /v=0/],
      ['JSON', JSON.stringify({ type: 'offer', sdp: OFFER }), /v=0/],
      ['a line that is not SDP', OFFER.replace('s=-', 's=-\r\nhello'), /<type>=<value>/],
      ['no data channel', without('m=application'), /data channel/],
      [
        'audio only',
        OFFER.replace('m=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'm=audio 9 RTP/AVP 0'),
        /data channel/,
      ],
      ['no ice-ufrag', without('a=ice-ufrag'), /ICE username/],
      ['short ice-ufrag', OFFER.replace('a=ice-ufrag:Kd8s', 'a=ice-ufrag:Kd8'), /ICE username/],
      ['no ice-pwd', without('a=ice-pwd'), /ICE password/],
      ['short ice-pwd', OFFER.replace(/a=ice-pwd:.*/, 'a=ice-pwd:short'), /ICE password/],
      ['no fingerprint', without('a=fingerprint'), /fingerprint/],
      [
        'bad fingerprint',
        OFFER.replace(/a=fingerprint:.*/, 'a=fingerprint:sha-256 xx'),
        /fingerprint/,
      ],
      [
        'unordered records channel in SDP',
        OFFER.replace('a=mid:0', 'a=mid:0\r\na=dcmap:0 label="records";ordered=false'),
        /ordered and reliable/,
      ],
      [
        'unreliable records channel in SDP',
        OFFER.replace('a=mid:0', 'a=mid:0\r\na=dcmap:0 label="records";max-retr=0'),
        /ordered and reliable/,
      ],
    ];
    for (const [name, sdp, reason] of cases) {
      const result = checkOffer(sdp);
      expect(result.ok, name).toBe(false);
      if (!result.ok) expect(result.reason, name).toMatch(reason);
    }
    expect(checkOffer(without('a=ice-pwd'))).toMatchObject({ missing: 'a=ice-pwd' });
  });

  test('behavior: the size limit is an option', () => {
    expect(checkOffer(OFFER, { maxBytes: 100 }).ok).toBe(false);
    expect(checkOffer(OFFER, { maxBytes: OFFER.length }).ok).toBe(true);
  });

  test('behavior: an ordered, reliable records channel in SDP passes', () => {
    expect(checkOffer(OFFER.replace('a=mid:0', 'a=mid:0\r\na=dcmap:0 label="records"')).ok).toBe(
      true,
    );
  });
});

describe('withoutTrickleOption', () => {
  test('default: trickle is dropped from ice-options, other options and lines kept', () => {
    const answer = 'v=0\r\na=ice-options:ice2,trickle\r\na=mid:0\r\n';
    expect(withoutTrickleOption(answer)).toBe('v=0\r\na=ice-options:ice2\r\na=mid:0\r\n');
    expect(withoutTrickleOption('v=0\na=ice-options:trickle ice2\n')).toBe(
      'v=0\na=ice-options:ice2\n',
    );
  });

  test('behavior: a line with only trickle goes; an answer without it is unchanged', () => {
    expect(withoutTrickleOption('v=0\r\na=ice-options:trickle\r\na=mid:0\r\n')).toBe(
      'v=0\r\na=ice-options:trickle\r\na=mid:0\r\n'.replace('a=ice-options:trickle\r\n', ''),
    );
    expect(withoutTrickleOption(OFFER.replace('a=ice-options:trickle\r\n', ''))).toBe(
      OFFER.replace('a=ice-options:trickle\r\n', ''),
    );
  });
});

describe('parseTrickleFragment (RFC 8840 fragments, docs/protocol.md §3.1.2)', () => {
  const host = 'candidate:1467250027 1 udp 2122260223 192.168.1.10 46243 typ host generation 0';
  const mdns =
    'candidate:2 1 UDP 2113937151 0b5b2f8e-1f0b-4b47-9a1f-0b8a0e9d1c2f.local 51234 typ host';
  const srflx = 'candidate:3 1 udp 1677729535 203.0.113.7 61000 typ srflx raddr 0.0.0.0 rport 0';

  test('default: credentials, the mid of each candidate and the end are read', () => {
    const fragment = [
      'a=ice-ufrag:Kd8s',
      'a=ice-pwd:9cBnR4vBF4mSgHkYQ0mU7f5q',
      'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
      'a=mid:0',
      `a=${host}`,
      `a=${mdns}`,
      `a=${srflx}`,
      'a=end-of-candidates',
      '',
    ].join('\r\n');
    expect(parseTrickleFragment(fragment)).toEqual({
      ok: true,
      iceUfrag: 'Kd8s',
      icePwd: '9cBnR4vBF4mSgHkYQ0mU7f5q',
      candidates: [
        { candidate: host, mid: '0' },
        { candidate: mdns, mid: '0' },
        { candidate: srflx, mid: '0' },
      ],
      endOfCandidates: true,
    });
  });

  test('behavior: an end-of-candidates alone is a fragment; unknown attributes are ignored', () => {
    expect(parseTrickleFragment('a=end-of-candidates\n')).toEqual({
      ok: true,
      candidates: [],
      endOfCandidates: true,
    });
    expect(parseTrickleFragment(`a=group:BUNDLE 0\na=x-custom:1\na=${host}\n`)).toMatchObject({
      ok: true,
      candidates: [{ candidate: host }],
    });
  });

  test.each([
    ['', /empty/],
    ['hello', /<type>=<value>/],
    ['a=candidate:1 1 udp 1 999.1.1.1:x 1 typ host', /not an ICE candidate|address/],
    ['a=candidate:1 1 udp 2122260223 192.168.1.10 70000 typ host', /port/],
    ['a=candidate:1 1 udp 2122260223 bad_name! 1 typ host', /not an ICE candidate|address/],
    ['a=candidate:1 1 udp 2122260223 192.168.1.10 1 typ bogus', /not an ICE candidate/],
    ['a=ice-ufrag:Kd8s\na=end-of-candidates', /both a=ice-ufrag and a=ice-pwd/],
    ['a=ice-ufrag:K!\na=ice-pwd:9cBnR4vBF4mSgHkYQ0mU7f5q', /a=ice-ufrag/],
    ['a=mid:0\na=ice-options:trickle', /no candidates/],
    [`m=application 9 X\na=${host}\nm=application 9 X\na=mid:1\na=${host}`, /a=mid/],
    [Array.from({ length: 65 }, () => `a=${host}`).join('\n'), /more than 64/],
    ['a=end-of-candidates\u0001', /control characters/],
  ])('error: %j is refused', (body, reason) => {
    const result = parseTrickleFragment(body);
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.reason).toMatch(reason);
  });
});

describe('ifMatchSatisfied', () => {
  test('default: the quoted ETag, a list holding it, or *; never a weak tag or another', () => {
    expect(ifMatchSatisfied('"Zq7P"', '"Zq7P"')).toBe(true);
    expect(ifMatchSatisfied('"a", "Zq7P"', '"Zq7P"')).toBe(true);
    expect(ifMatchSatisfied(' * ', '"Zq7P"')).toBe(true);
    expect(ifMatchSatisfied('W/"Zq7P"', '"Zq7P"')).toBe(false);
    expect(ifMatchSatisfied('Zq7P', '"Zq7P"')).toBe(false);
    expect(ifMatchSatisfied('"other"', '"Zq7P"')).toBe(false);
  });
});
