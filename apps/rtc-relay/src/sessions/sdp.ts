/** Small, line-based SDP helpers: the relay only inspects offers and touches a few attributes of its answers. */
import { checkOffer, withoutTrickleOption } from '@streamanchor/protocol';

const EOL = /\r?\n/;

/**
 * Why an offer cannot carry our data channel, or undefined when it looks usable: the one
 * validator the gateway runs too (`checkOffer` in @streamanchor/protocol).
 */
export function offerProblem(sdp: string): string | undefined {
  const result = checkOffer(sdp);
  return result.ok ? undefined : result.reason;
}

/** The answer without the `trickle` ICE option (the relay takes no trickled candidates). */
export { withoutTrickleOption };

/**
 * The offer without its ICE candidates (and without end-of-candidates): the relay then
 * never sends to addresses an offer names, and learns each client's address from the
 * client's own connectivity checks (peer-reflexive), as an ICE-lite server would.
 */
export function withoutCandidates(sdp: string): string {
  return sdp
    .split(/(?<=\n)/)
    .filter((line) => !line.startsWith('a=candidate:') && !line.startsWith('a=end-of-candidates'))
    .join('');
}

/** Sets (or adds, under the m=application section) the a=max-message-size a peer may send. */
export function withMaxMessageSize(sdp: string, bytes: number): string {
  if (/^a=max-message-size:\d+/m.test(sdp))
    return sdp.replace(/^a=max-message-size:\d+/m, `a=max-message-size:${bytes}`);
  return sdp.replace(/^(a=sctp-port:\d+)(\r?\n)/m, `$1$2a=max-message-size:${bytes}$2`);
}

/**
 * Adds, for each UDP host candidate, a copy at `address` (same port): the address clients
 * reach the relay at when it sits behind 1:1 NAT or in a container with a published port.
 */
export function withPublicAddress(sdp: string, address: string): string {
  const seen = new Set<string>();
  let n = 0;
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const out: string[] = [];
  for (const line of sdp.split(EOL)) {
    out.push(line);
    const match = /^a=candidate:\S+ (\d+) (udp|UDP) (\d+) (\S+) (\d+) typ host(.*)$/.exec(line);
    if (!match) continue;
    const [, component, transport, priority, host, port, rest] = match;
    if (host === address || seen.has(port!)) continue;
    seen.add(port!);
    n += 1;
    out.push(
      `a=candidate:pub${n} ${component} ${transport} ${priority} ${address} ${port} typ host${rest}`,
    );
  }
  return out.join(eol);
}

/**
 * The ICE credentials of a description (its first a=ice-ufrag and a=ice-pwd, session-level or
 * in a section) and the mid of its data-channel m= section.
 */
export function iceOfOffer(sdp: string): { ufrag?: string; pwd?: string; mid?: string } {
  const result: { ufrag?: string; pwd?: string; mid?: string } = {};
  let inData = false;
  for (const line of sdp.split(EOL)) {
    if (line.startsWith('m=')) inData = line.startsWith('m=application ');
    else if (result.ufrag === undefined && line.startsWith('a=ice-ufrag:'))
      result.ufrag = line.slice('a=ice-ufrag:'.length).trim();
    else if (result.pwd === undefined && line.startsWith('a=ice-pwd:'))
      result.pwd = line.slice('a=ice-pwd:'.length).trim();
    else if (inData && result.mid === undefined && line.startsWith('a=mid:'))
      result.mid = line.slice('a=mid:'.length).trim();
  }
  return result;
}

/** The candidate lines of a description, for logs and reports. */
export function candidatesOf(sdp: string): string[] {
  return sdp
    .split(EOL)
    .filter((line) => line.startsWith('a=candidate:'))
    .map((line) => line.slice('a='.length));
}
