import { describe, expect, test } from 'vitest';
import { LIMITS } from './constants';
import { checkOffer, withoutTrickleOption } from './sdp';

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
