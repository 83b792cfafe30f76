/**
 * Parsing of HTTP `Link` headers (RFC 8288) and of the ICE servers a WHIP-style
 * endpoint announces in them (RFC 9725 §4.6):
 *
 *   Link: <stun:stun.example.net>; rel="ice-server"
 *   Link: <turn:turn.example.net?transport=udp>; rel="ice-server";
 *         username="user"; credential="secret"; credential-type="password"
 *
 * fetch joins repeated headers with ", ", so one string may hold many link-values.
 */

/** One link-value: its target URI and its parameters (names lowercased, first occurrence wins). */
export interface LinkValue {
  uri: string;
  params: Record<string, string>;
}

/** An ICE server entry, structurally compatible with the DOM's RTCIceServer. */
export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

const WHITESPACE = new Set([' ', '\t', '\r', '\n']);
const ICE_SCHEMES = new Set(['stun', 'stuns', 'turn', 'turns']);

/** Parses a Link header value into its link-values. Malformed elements are skipped, never thrown on. */
export function parseLinkHeader(
  header: string | readonly string[] | null | undefined,
): LinkValue[] {
  if (header == null) return [];
  if (typeof header !== 'string') return header.flatMap((one) => parseLinkHeader(one));
  const links: LinkValue[] = [];
  let i = 0;
  const n = header.length;
  const skipWhitespace = () => {
    while (i < n && WHITESPACE.has(header[i]!)) i++;
  };
  /** Skips to the next top-level comma (outside <> and quotes), leaving `i` on it or at the end. */
  const skipToNextElement = () => {
    let inQuotes = false;
    let inBrackets = false;
    while (i < n) {
      const c = header[i]!;
      if (inQuotes) {
        if (c === '\\') i++;
        else if (c === '"') inQuotes = false;
      } else if (inBrackets) {
        if (c === '>') inBrackets = false;
      } else if (c === '"') inQuotes = true;
      else if (c === '<') inBrackets = true;
      else if (c === ',') return;
      i++;
    }
  };

  while (i < n) {
    skipWhitespace();
    if (header[i] === ',') {
      i++;
      continue;
    }
    if (i >= n) break;
    if (header[i] !== '<') {
      skipToNextElement();
      continue;
    }
    const close = header.indexOf('>', i + 1);
    if (close === -1) break;
    const uri = header.slice(i + 1, close).trim();
    i = close + 1;
    const params: Record<string, string> = {};
    let malformed = false;
    for (;;) {
      skipWhitespace();
      if (i >= n || header[i] === ',') break;
      if (header[i] !== ';') {
        malformed = true;
        skipToNextElement();
        break;
      }
      i++;
      skipWhitespace();
      let nameEnd = i;
      while (nameEnd < n && !'=;,'.includes(header[nameEnd]!) && !WHITESPACE.has(header[nameEnd]!))
        nameEnd++;
      const name = header.slice(i, nameEnd).toLowerCase();
      i = nameEnd;
      skipWhitespace();
      let value = '';
      if (header[i] === '=') {
        i++;
        skipWhitespace();
        if (header[i] === '"') {
          i++;
          while (i < n && header[i] !== '"') {
            if (header[i] === '\\' && i + 1 < n) i++;
            value += header[i];
            i++;
          }
          i++; // closing quote (or past the end)
        } else {
          const start = i;
          while (i < n && header[i] !== ';' && header[i] !== ',' && !WHITESPACE.has(header[i]!))
            i++;
          value = header.slice(start, i);
        }
      }
      if (name && !(name in params)) params[name] = value;
    }
    if (!malformed && uri) links.push({ uri, params });
  }
  return links;
}

/**
 * The ICE servers announced by `rel="ice-server"` links. Keeps stun:, stuns:, turn: and
 * turns: URIs; drops TURN entries without username and credential (a browser rejects
 * them) and entries whose credential-type is not `password`.
 */
export function parseIceServerLinks(
  header: string | readonly string[] | null | undefined,
): IceServer[] {
  const servers: IceServer[] = [];
  for (const link of parseLinkHeader(header)) {
    const rels = (link.params.rel ?? '').toLowerCase().split(/\s+/);
    if (!rels.includes('ice-server')) continue;
    const scheme = link.uri.slice(0, Math.max(0, link.uri.indexOf(':'))).toLowerCase();
    if (!ICE_SCHEMES.has(scheme)) continue;
    const credentialType = link.params['credential-type'];
    if (credentialType !== undefined && credentialType.toLowerCase() !== 'password') continue;
    const { username, credential } = link.params;
    if (scheme.startsWith('turn') && (username === undefined || credential === undefined)) continue;
    const server: IceServer = { urls: link.uri };
    if (username !== undefined) server.username = username;
    if (credential !== undefined) server.credential = credential;
    servers.push(server);
  }
  return servers;
}
