import { DATA_CHANNEL_LABEL, LIMITS } from './constants';

/**
 * The one SDP offer validator: the gateway runs it before any relay is asked, and the relay
 * runs it again on what reaches it (the relay's WebRTC stack then has the last word).
 * It is a cheap line-based check, not a full parser. Pure; never throws.
 *
 * Checks, in this order (the first that fails is the reason):
 *  1. a string of at most `maxBytes` UTF-8 bytes (LIMITS.maxSdpBytes), not blank;
 *  2. well-formed text: no lone UTF-16 surrogate, no U+FFFD (what a decoder puts for bytes
 *     that were not UTF-8), no control characters other than TAB, CR and LF;
 *  3. the first line is exactly `v=0`, and every line is `<letter>=<value>` (RFC 8866);
 *  4. an `m=application <port> …DTLS/SCTP webrtc-datachannel` section (RFC 8841);
 *  5. ICE credentials: `a=ice-ufrag` (4–256 ice-chars) and `a=ice-pwd` (22–256), RFC 8839;
 *  6. a DTLS `a=fingerprint:<hash> <hex pairs>` (RFC 8122);
 *  7. if the offer negotiates the `records` channel in SDP (`a=dcmap`, RFC 8864; browsers
 *     do not, they use DCEP), it must be ordered and reliable.
 *
 * Not required: ICE candidates. An offer may carry all, some or none of them (the
 * relay learns the client's address from the client's own connectivity checks), so a
 * client need not wait for gathering to finish before posting.
 */
export type OfferCheck =
  | { ok: true }
  | {
      ok: false;
      /** One sentence, safe to show to the client. */
      reason: string;
      /** The line or attribute that is missing or wrong, when there is one. */
      missing?: string;
    };

export interface OfferCheckOptions {
  /** Largest offer in UTF-8 bytes; default LIMITS.maxSdpBytes. */
  maxBytes?: number;
}

// Control characters other than TAB, CR and LF never belong in SDP.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const SDP_LINE = /^[a-z]=/;
const DATA_CHANNEL_MLINE =
  /^m=application \d+(\/\d+)? (UDP\/|TCP\/)?DTLS\/SCTP webrtc-datachannel$/;
const ICE_UFRAG = /^a=ice-ufrag:[A-Za-z0-9+/]{4,256}$/;
const ICE_PWD = /^a=ice-pwd:[A-Za-z0-9+/]{22,256}$/;
const FINGERPRINT = /^a=fingerprint:[A-Za-z0-9-]+ [0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+$/;

function refuse(reason: string, missing?: string): OfferCheck {
  return missing === undefined ? { ok: false, reason } : { ok: false, reason, missing };
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}

/** Checks an SDP offer against the rules above; never throws. */
export function checkOffer(sdp: unknown, options: OfferCheckOptions = {}): OfferCheck {
  const maxBytes = options.maxBytes ?? LIMITS.maxSdpBytes;
  if (typeof sdp !== 'string') return refuse('The offer is not text');
  // A cheap bound first: a string longer than maxBytes UTF-16 units has more bytes too.
  if (sdp.length > maxBytes || utf8Length(sdp) > maxBytes)
    return refuse(`The SDP is larger than ${maxBytes} bytes`);
  if (sdp.trim().length === 0) return refuse('The body is empty; send an SDP offer');
  if (LONE_SURROGATE.test(sdp) || sdp.includes('\ufffd'))
    return refuse('The SDP is not valid UTF-8');
  if (CONTROL_CHARACTERS.test(sdp)) return refuse('The SDP contains control characters');

  const lines = sdp.split(/\r?\n/).map((line) => line.trimEnd());
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  if (lines[0] !== 'v=0') return refuse('The SDP must start with "v=0"', 'v=0');
  const bad = lines.find((line) => !SDP_LINE.test(line));
  if (bad !== undefined)
    return refuse(`The SDP has a line that is not <type>=<value>: "${bad.slice(0, 40)}"`);

  if (!lines.some((line) => DATA_CHANNEL_MLINE.test(line))) {
    return refuse(
      'The SDP offers no data channel (m=application … UDP/DTLS/SCTP webrtc-datachannel)',
      'm=application',
    );
  }
  if (!lines.some((line) => ICE_UFRAG.test(line)))
    return refuse('The SDP has no valid ICE username fragment (a=ice-ufrag)', 'a=ice-ufrag');
  if (!lines.some((line) => ICE_PWD.test(line)))
    return refuse('The SDP has no valid ICE password (a=ice-pwd)', 'a=ice-pwd');
  if (!lines.some((line) => FINGERPRINT.test(line)))
    return refuse('The SDP has no a=fingerprint (DTLS)', 'a=fingerprint');

  for (const line of lines) {
    if (!line.startsWith('a=dcmap:') || !line.includes(`label="${DATA_CHANNEL_LABEL}"`)) continue;
    if (/\bordered=false\b/.test(line) || /\bmax-(retr|time)=/.test(line)) {
      return refuse(
        `The "${DATA_CHANNEL_LABEL}" data channel must be ordered and reliable`,
        'a=dcmap',
      );
    }
  }
  return { ok: true };
}

/**
 * The relay's answer without the `trickle` ICE option. The relay takes no trickled
 * candidates (there is no PATCH; its answer is complete, with a=end-of-candidates), so
 * its answer must not tell the browser it can trickle (`canTrickleIceCandidates`).
 * Other ICE options (such as `ice2`) are kept; an `a=ice-options` line left empty is
 * dropped. Pure.
 */
export function withoutTrickleOption(sdp: string): string {
  return sdp
    .split(/(?<=\n)/)
    .flatMap((line) => {
      const match = /^a=ice-options:([^\r\n]*)(\r?\n)?$/.exec(line);
      if (!match) return [line];
      const raw = match[1] ?? '';
      const options = raw.split(/[\s,]+/).filter((o) => o && o !== 'trickle');
      if (options.length === 0) return [];
      // RFC 8839 separates options with spaces; libdatachannel writes `ice2,trickle`.
      return [`a=ice-options:${options.join(raw.includes(',') ? ',' : ' ')}${match[2] ?? ''}`];
    })
    .join('');
}
