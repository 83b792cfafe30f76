import { createHash } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { BaseError } from '@streamanchor/protocol';
import { coturnCredential } from '@streamanchor/service-kit';

/** One ICE server as RTCPeerConnection takes it (RTCIceServer), with its URLs as a list. */
export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

/** Who the servers are for, and until when at the latest their credentials may last. */
export interface IceServerRequest {
  /** The token's subject (named in coturn usernames). */
  subject: string;
  /**
   * When the session can end at the latest (ms since the epoch; the token's exp): credentials
   * never outlast it, whatever the TTL says.
   */
  notAfter?: number;
}

/**
 * Where a session's ICE servers come from. One provider per gateway, chosen by ICE_PROVIDER.
 * TURN credentials are minted per call (per request for a session), never shared.
 */
export interface IceServerProvider {
  readonly kind: 'none' | 'static' | 'coturn' | 'cloudflare';
  /** The servers for one session; never rejects for a provider that has a fallback. */
  iceServers(request: IceServerRequest): Promise<IceServer[]>;
  /** TURN credentials issued so far by this provider (the "TURN credentials issued" metric). */
  readonly credentialsIssued: number;
}

/** A provider could not produce ICE servers (only the Cloudflare API can fail). */
export class IceProviderError extends BaseError<{ provider: string; status?: number }> {
  override name = 'IceProviderError';
}

/** No ICE servers: clients use host candidates (and reach the relay directly). */
export function createNoIceServers(): IceServerProvider {
  return { kind: 'none', iceServers: async () => [], credentialsIssued: 0 };
}

/**
 * A fixed list, served to everyone as is. Meant for STUN (no credentials): config refuses
 * TURN URIs in it, as TURN credentials are per session and short-lived.
 */
export function createStaticProvider(list: readonly IceServer[]): IceServerProvider {
  const servers = list.map((server) => ({ ...server, urls: [...server.urls] }));
  return {
    kind: 'static',
    iceServers: async () => servers.map((server) => ({ ...server, urls: [...server.urls] })),
    credentialsIssued: 0,
  };
}

export interface CoturnProviderOptions {
  /** coturn's `static-auth-secret` (with `use-auth-secret`). */
  secret: string;
  /** turn:/turns: URIs of the coturn server(s); each gets the same credentials. */
  urls: readonly string[];
  /** Lifetime of a credential, in seconds (cut at the request's notAfter). */
  ttlS: number;
  /** STUN servers listed before the TURN ones (no credentials). Default none. */
  stun?: readonly IceServer[];
  /** Clock, ms since the epoch (tests pass a fixed one). */
  now?: () => number;
}

/** Subjects used as is in a TURN username; any other is replaced by its digest. */
const PLAIN_SUBJECT = /^[A-Za-z0-9._~@+-]{1,128}$/;

/**
 * The subject part of a coturn username: the subject itself when it is short plain ASCII
 * (no colon, quote or backslash, so it survives the username's `:`, a Link header's quoted
 * string and STUN's 513-byte limit), else `sha256-` and 22 characters of base64url of its
 * SHA-256. coturn only logs this part; the credential's validity rests on the HMAC.
 */
export function turnUserId(subject: string): string {
  if (PLAIN_SUBJECT.test(subject)) return subject;
  return `sha256-${createHash('sha256').update(subject).digest('base64url').slice(0, 22)}`;
}

/** Self-hosted coturn with the TURN REST scheme (`use-auth-secret`, `static-auth-secret`). */
export function createCoturnProvider({
  secret,
  urls,
  ttlS,
  stun = [],
  now = Date.now,
}: CoturnProviderOptions): IceServerProvider {
  let issued = 0;
  return {
    kind: 'coturn',
    async iceServers({ subject, notAfter }) {
      const at = now();
      const until = Math.min(at + ttlS * 1000, notAfter ?? Number.POSITIVE_INFINITY);
      const expiresAtS = Math.floor(until / 1000);
      const { username, credential } = coturnCredential(secret, expiresAtS, turnUserId(subject));
      issued += 1;
      return [
        ...stun.map((server) => ({ ...server, urls: [...server.urls] })),
        { urls: [...urls], username, credential },
      ];
    },
    get credentialsIssued() {
      return issued;
    },
  };
}

/** Cloudflare's documented API root (the credentials path is appended to it). */
export const CLOUDFLARE_TURN_API_URL = 'https://rtc.live.cloudflare.com/v1';
/** Cloudflare refuses credentials living longer than 48 hours. */
export const CLOUDFLARE_MAX_TTL_S = 172_800;

const CloudflareIceServer = Type.Object({
  urls: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })]),
  username: Type.Optional(Type.String()),
  credential: Type.Optional(Type.String()),
});
const CloudflareResponse = Type.Object({
  iceServers: Type.Array(CloudflareIceServer, { minItems: 1 }),
});
type CloudflareResponse = Static<typeof CloudflareResponse>;
const checkCloudflareResponse = TypeCompiler.Compile(CloudflareResponse);

export interface CloudflareProviderOptions {
  /** The TURN key's id (it names the key in the URL; not secret). */
  keyId: string;
  /** The TURN key's API token (secret: sent as a bearer token, never to clients). */
  apiToken: string;
  /** Lifetime of a credential, in seconds (cut at the request's notAfter, at most 48 h). */
  ttlS: number;
  /** API root; default CLOUDFLARE_TURN_API_URL (tests point it at a local server). */
  baseUrl?: string;
  /** How long one API call may take (ms). Default 2000. */
  timeoutMs?: number;
  fetch?: typeof globalThis.fetch;
  now?: () => number;
}

/**
 * Cloudflare's TURN service. What this relies on, from Cloudflare's "Generate Credentials"
 * page (developers.cloudflare.com/realtime/turn/generate-credentials/):
 *
 *   POST https://rtc.live.cloudflare.com/v1/turn/keys/$TURN_KEY_ID/credentials/generate-ice-servers
 *   Authorization: Bearer $TURN_KEY_API_TOKEN
 *   Content-Type: application/json
 *   {"ttl": 86400}
 *
 * answered (201 Created; older versions of the page say 200: any 2xx is taken) with
 * `{"iceServers": [{"urls": ["stun:stun.cloudflare.com:3478", …]}, {"urls": ["turn:…", …],
 * "username": "…", "credential": "…"}]}`, ready for RTCPeerConnection. The page (and its
 * troubleshooting notes) also say credentials live at most 48 hours and that browsers block
 * the alternate port 53 entries, which should be filtered out: they are dropped here.
 *
 * Rejects with IceProviderError when the API cannot be reached, answers an error status, or
 * answers something else than the above; see createFallbackProvider for what then.
 */
export function createCloudflareProvider({
  keyId,
  apiToken,
  ttlS,
  baseUrl = CLOUDFLARE_TURN_API_URL,
  timeoutMs = 2000,
  fetch = globalThis.fetch,
  now = Date.now,
}: CloudflareProviderOptions): IceServerProvider {
  const url = `${baseUrl.replace(/\/+$/, '')}/turn/keys/${encodeURIComponent(keyId)}/credentials/generate-ice-servers`;
  let issued = 0;
  const fail = (message: string, extra: { status?: number; cause?: unknown } = {}) =>
    new IceProviderError(message, {
      details: { provider: 'cloudflare', status: extra.status },
      cause: extra.cause,
    });

  return {
    kind: 'cloudflare',
    async iceServers({ notAfter }) {
      const leftS =
        notAfter === undefined ? Number.POSITIVE_INFINITY : Math.floor((notAfter - now()) / 1000);
      const ttl = Math.max(1, Math.min(ttlS, CLOUDFLARE_MAX_TTL_S, leftS));
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers: { Authorization: `Bearer ${apiToken}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ ttl }),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        throw fail(`Cloudflare's TURN API could not be reached: ${(error as Error).message}`, {
          cause: error,
        });
      }
      const text = await response.text().catch(() => '');
      if (!response.ok) {
        throw fail(`Cloudflare's TURN API answered ${response.status}: ${text.slice(0, 200)}`, {
          status: response.status,
        });
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (!checkCloudflareResponse.Check(body)) {
        throw fail(`Cloudflare's TURN API answered no iceServers list: ${text.slice(0, 200)}`, {
          status: response.status,
        });
      }
      const servers = fromCloudflare(body);
      if (servers.some((server) => server.username !== undefined)) issued += 1;
      return servers;
    },
    get credentialsIssued() {
      return issued;
    },
  };
}

function fromCloudflare(body: CloudflareResponse): IceServer[] {
  const servers: IceServer[] = [];
  for (const server of body.iceServers) {
    const urls = (Array.isArray(server.urls) ? server.urls : [server.urls]).filter(
      (url) => !/^(stuns?|turns?):[^?]*:53(\?|$)/i.test(url),
    );
    if (urls.length === 0) continue;
    servers.push({
      urls,
      ...(server.username !== undefined && { username: server.username }),
      ...(server.credential !== undefined && { credential: server.credential }),
    });
  }
  return servers;
}

export interface FallbackProviderOptions {
  /** Called with the primary's error before the fallback answers (to log it). */
  onError: (error: unknown) => void;
}

/**
 * `primary`, and when it fails, `fallback` (the static STUN list, possibly empty) instead:
 * a TURN service that is down must not break signaling. A client that can reach the relay
 * directly still connects; one that needs TURN fails its ICE checks as it would without TURN.
 */
export function createFallbackProvider(
  primary: IceServerProvider,
  fallback: IceServerProvider,
  { onError }: FallbackProviderOptions,
): IceServerProvider & { readonly fallbacks: number } {
  let fallbacks = 0;
  return {
    kind: primary.kind,
    async iceServers(request) {
      try {
        return await primary.iceServers(request);
      } catch (error) {
        fallbacks += 1;
        onError(error);
        return fallback.iceServers(request);
      }
    },
    get credentialsIssued() {
      return primary.credentialsIssued + fallback.credentialsIssued;
    },
    get fallbacks() {
      return fallbacks;
    },
  };
}
