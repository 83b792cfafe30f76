import { BaseError, checkOffer } from '@streamanchor/protocol';
import { ProblemError } from '../errors';

/** Thrown by validateOffer; `shortMessage` is safe to show to the client. */
export class InvalidOfferError extends BaseError<{ missing?: string }> {
  override name = 'InvalidOfferError';
  constructor(reason: string, details: { missing?: string } = {}) {
    super(reason, { details });
  }

  toProblem(): ProblemError {
    return new ProblemError('invalid_sdp', this.shortMessage, { cause: this });
  }
}

/**
 * A cheap sanity check of an SDP offer before any relay sees it: the one validator the
 * relay runs too (`checkOffer` in @streamanchor/protocol: size, UTF-8, `v=0`, a
 * webrtc-datachannel section, ICE credentials, a DTLS fingerprint). It is no full
 * parser; the relay's WebRTC stack has the last word.
 */
export function validateOffer(sdp: string): void {
  const result = checkOffer(sdp);
  if (!result.ok)
    throw new InvalidOfferError(
      result.reason,
      result.missing === undefined ? {} : { missing: result.missing },
    );
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
