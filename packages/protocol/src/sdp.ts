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
 * The relay's answer without the `trickle` ICE option. The relay's answer is complete (its
 * candidates gathered, a=end-of-candidates) and it never trickles its own; clients trickle
 * theirs by PATCH (RFC 9725, which does not need the option), so the answer does not tell
 * the browser it can trickle (`canTrickleIceCandidates`).
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

/** The media type of a trickle ICE PATCH body (RFC 8840). */
export const TRICKLE_ICE_SDPFRAG = 'application/trickle-ice-sdpfrag';

/** Most candidates one trickle fragment may carry. */
export const MAX_FRAGMENT_CANDIDATES = 64;

/** One trickled candidate: the `candidate:…` attribute value (no `a=`) and its m= section's mid. */
export interface TrickleCandidate {
  candidate: string;
  mid?: string;
}

export type TrickleFragment =
  | {
      ok: true;
      /** a=ice-ufrag / a=ice-pwd of the fragment, when it has them (both or neither). */
      iceUfrag?: string;
      icePwd?: string;
      candidates: TrickleCandidate[];
      endOfCandidates: boolean;
    }
  | { ok: false; reason: string };

const ICE_CHARS = /^[A-Za-z0-9+/]+$/;
// RFC 8839 §5.1: foundation component transport priority address port typ type [raddr a] [rport p] *(ext)
const CANDIDATE =
  /^candidate:([A-Za-z0-9+/]{1,32}) (\d{1,5}) ([A-Za-z][A-Za-z0-9-]{0,31}) (\d{1,10}) (\S{1,255}) (\d{1,5}) typ (host|srflx|prflx|relay)( .*)?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** Why `value` (the part after `a=`) is not a usable ICE candidate, or undefined. */
export function candidateProblem(value: string): string | undefined {
  const match = CANDIDATE.exec(value);
  if (!match)
    return `not an ICE candidate (candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> …): "${value.slice(0, 80)}"`;
  const [, , component, , priority, address, port] = match;
  if (Number(component) < 1 || Number(component) > 256)
    return `candidate component out of range: ${component}`;
  if (Number(priority) > 0xffffffff) return `candidate priority out of range: ${priority}`;
  if (Number(port) > 65535) return `candidate port out of range: ${port}`;
  const host = address!;
  if (!IPV4.test(host) && !(host.includes(':') && IPV6.test(host)) && !HOSTNAME.test(host))
    return `candidate address is not an IP address or host name: "${host.slice(0, 60)}"`;
  return undefined;
}

/**
 * Parses a trickle ICE SDP fragment (RFC 8840 §4.4, as RFC 9725 §4.3.1 uses it): optional
 * session-level `a=ice-ufrag`, `a=ice-pwd`, `a=ice-options`, `a=group`; then `m=` sections,
 * each with an optional `a=mid` and its `a=ice-ufrag`/`a=ice-pwd`, `a=candidate:` and
 * `a=end-of-candidates` lines. Other attributes are ignored, as RFC 8840 says. Refused: text
 * that is not `<letter>=<value>` lines, more than one pair of ICE credentials, a malformed
 * credential or candidate, more than MAX_FRAGMENT_CANDIDATES candidates, or a fragment with
 * neither candidates, end-of-candidates nor credentials. Pure; never throws.
 */
export function parseTrickleFragment(
  body: unknown,
  maxBytes = LIMITS.maxSdpBytes,
): TrickleFragment {
  const refuse = (reason: string): TrickleFragment => ({ ok: false, reason });
  if (typeof body !== 'string') return refuse('The fragment is not text');
  if (body.length > maxBytes || utf8Length(body) > maxBytes)
    return refuse(`The fragment is larger than ${maxBytes} bytes`);
  if (LONE_SURROGATE.test(body) || body.includes('\ufffd'))
    return refuse('The fragment is not valid UTF-8');
  if (CONTROL_CHARACTERS.test(body)) return refuse('The fragment contains control characters');
  const lines = body
    .split(/\r?\n/)
    .map((line) => line.trimEnd())
    .filter((line) => line !== '');
  if (lines.length === 0) return refuse('The fragment is empty');
  let ufrag: string | undefined;
  let pwd: string | undefined;
  let mid: string | undefined;
  let sections = 0;
  let endOfCandidates = false;
  const candidates: TrickleCandidate[] = [];
  for (const line of lines) {
    if (!SDP_LINE.test(line))
      return refuse(`The fragment has a line that is not <type>=<value>: "${line.slice(0, 40)}"`);
    if (line.startsWith('m=')) {
      sections += 1;
      mid = undefined;
    } else if (line.startsWith('a=mid:')) {
      mid = line.slice('a=mid:'.length);
      if (!/^[A-Za-z0-9_.~-]{1,32}$/.test(mid))
        return refuse(`Not a usable a=mid: "${mid.slice(0, 40)}"`);
    } else if (line.startsWith('a=ice-ufrag:') || line.startsWith('a=ice-pwd:')) {
      const pwdLine = line.startsWith('a=ice-pwd:');
      const value = line.slice(pwdLine ? 'a=ice-pwd:'.length : 'a=ice-ufrag:'.length);
      const [min, name] = pwdLine ? [22, 'a=ice-pwd'] : [4, 'a=ice-ufrag'];
      if (!ICE_CHARS.test(value) || value.length < min || value.length > 256)
        return refuse(`Not a valid ${name}: ${min}–256 ICE characters`);
      const previous = pwdLine ? pwd : ufrag;
      if (previous !== undefined && previous !== value)
        return refuse(`The fragment has two different ${name} values`);
      if (pwdLine) pwd = value;
      else ufrag = value;
    } else if (line.startsWith('a=candidate:')) {
      const value = line.slice('a='.length);
      const problem = candidateProblem(value);
      if (problem) return refuse(`Bad candidate: ${problem}`);
      if (candidates.length >= MAX_FRAGMENT_CANDIDATES)
        return refuse(`The fragment has more than ${MAX_FRAGMENT_CANDIDATES} candidates`);
      candidates.push(mid === undefined ? { candidate: value } : { candidate: value, mid });
    } else if (line === 'a=end-of-candidates') {
      endOfCandidates = true;
    }
  }
  if ((ufrag === undefined) !== (pwd === undefined))
    return refuse('The fragment must carry both a=ice-ufrag and a=ice-pwd, or neither');
  if (sections > 1 && candidates.some((c) => c.mid === undefined))
    return refuse('With more than one m= section, every candidate needs its a=mid');
  if (candidates.length === 0 && !endOfCandidates && ufrag === undefined)
    return refuse('The fragment has no candidates, no a=end-of-candidates and no ICE credentials');
  return {
    ok: true,
    ...(ufrag === undefined ? {} : { iceUfrag: ufrag, icePwd: pwd }),
    candidates,
    endOfCandidates,
  };
}

/**
 * Whether an If-Match field value (RFC 9110 §13.1.1) is satisfied by `etag` (a quoted strong
 * entity-tag): `*`, or a comma-separated list holding `etag` (weak tags never match).
 */
export function ifMatchSatisfied(ifMatch: string, etag: string): boolean {
  const value = ifMatch.trim();
  if (value === '*') return true;
  return value
    .split(',')
    .map((tag) => tag.trim())
    .some((tag) => tag === etag);
}

/** The first a=ice-ufrag of an SDP, if any. */
export function iceUfragOfSdp(sdp: string): string | undefined {
  return /^a=ice-ufrag:(\S+)\s*$/m.exec(sdp)?.[1];
}
