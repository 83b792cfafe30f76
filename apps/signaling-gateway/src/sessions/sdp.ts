import { ProblemError } from '../errors';

/** Thrown by validateOffer; `shortMessage` is safe to show to the client. */
export class InvalidOfferError extends Error {
  override name = 'InvalidOfferError';
  readonly shortMessage: string;
  constructor(
    reason: string,
    readonly details: { missing?: string } = {},
  ) {
    super(reason);
    this.shortMessage = reason;
  }

  toProblem(): ProblemError {
    return new ProblemError('invalid_sdp', this.shortMessage, { cause: this });
  }
}

// Control characters other than TAB, CR and LF never belong in SDP.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/**
 * A cheap sanity check of an SDP offer before any relay sees it: SDP version line first,
 * an application m-line for the WebRTC data channel, ICE credentials and a DTLS
 * fingerprint. It is no full parser; the relay's WebRTC stack has the last word.
 */
export function validateOffer(sdp: string): void {
  if (sdp.trim().length === 0) throw new InvalidOfferError('The body is empty; send an SDP offer');
  if (CONTROL_CHARACTERS.test(sdp))
    throw new InvalidOfferError('The SDP contains control characters');
  const lines = sdp.split(/\r?\n/).map((line) => line.trimEnd());
  if (lines[0] !== 'v=0') throw new InvalidOfferError('The SDP must start with "v=0"');
  const hasDataChannel = lines.some(
    (line) => line.startsWith('m=application ') && line.split(' ').includes('webrtc-datachannel'),
  );
  if (!hasDataChannel) {
    throw new InvalidOfferError(
      'The SDP offers no data channel (m=application … webrtc-datachannel)',
      {
        missing: 'm=application',
      },
    );
  }
  if (!lines.some((line) => /^a=ice-ufrag:\S+$/.test(line))) {
    throw new InvalidOfferError('The SDP has no a=ice-ufrag', { missing: 'a=ice-ufrag' });
  }
  if (!lines.some((line) => /^a=ice-pwd:\S+$/.test(line))) {
    throw new InvalidOfferError('The SDP has no a=ice-pwd', { missing: 'a=ice-pwd' });
  }
  if (!lines.some((line) => /^a=fingerprint:\S+ [0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+$/.test(line))) {
    throw new InvalidOfferError('The SDP has no a=fingerprint (DTLS)', {
      missing: 'a=fingerprint',
    });
  }
}

/** The first ICE username fragment in an SDP, if any. */
export function iceUfragOf(sdp: string): string | undefined {
  const match = /^a=ice-ufrag:(\S+)\s*$/m.exec(sdp);
  return match?.[1];
}

/** ETag of a session: the quoted ICE ufrag of the answer (RFC 9725 §4.3.1), or undefined. */
export function sessionEtag(answerSdp: string): string | undefined {
  const ufrag = iceUfragOf(answerSdp);
  // ICE ufrags are ALPHA / DIGIT / "+" / "/" (RFC 8839); anything else cannot go in an ETag.
  return ufrag && /^[A-Za-z0-9+/]+$/.test(ufrag) ? `"${ufrag}"` : undefined;
}
