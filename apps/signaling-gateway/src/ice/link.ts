import type { IceServer } from './providers';

/** An ICE URI fit for a Link header (between `<` and `>`): printable ASCII, no `<>` or space. */
export const ICE_URI = /^(stuns?|turns?):[\x21-\x3b\x3d\x3f-\x7e]+$/i;
/** What a quoted-string may hold once `"` and `\` are escaped: printable ASCII and TAB. */
const QUOTABLE = /^[\t\x20-\x7e]*$/;

function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * The `Link` header values announcing `servers` (RFC 9725 §4.6), one per URL:
 *
 *   <stun:stun.example.net:3478>; rel="ice-server"   (never with credentials)
 *   <turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="…";
 *     credential="…"; credential-type="password"
 *
 * A URL or credential that cannot be written into a header (control or non-ASCII characters,
 * `<`, `>`, spaces) is left out, and so is a TURN URL without credentials; `onSkipped` hears
 * of each (a provider's answer is not trusted to be header-safe).
 */
export function iceServerLinks(
  servers: readonly IceServer[],
  onSkipped?: (url: string, reason: string) => void,
): string[] {
  const links: string[] = [];
  for (const server of servers) {
    const { username, credential } = server;
    for (const url of server.urls) {
      if (!ICE_URI.test(url)) {
        onSkipped?.(url, 'not a stun:, stuns:, turn: or turns: URI fit for a header');
        continue;
      }
      // STUN takes no credentials (a server entry may list STUN and TURN URLs together).
      if (!/^turns?:/i.test(url)) {
        links.push(`<${url}>; rel="ice-server"`);
        continue;
      }
      if (username === undefined || credential === undefined) {
        onSkipped?.(url, 'a TURN server without username and credential');
        continue;
      }
      if (!QUOTABLE.test(username) || !QUOTABLE.test(credential)) {
        onSkipped?.(url, 'username or credential not fit for a header');
        continue;
      }
      links.push(
        `<${url}>; rel="ice-server"; username=${quoted(username)}; credential=${quoted(credential)}; credential-type="password"`,
      );
    }
  }
  return links;
}
