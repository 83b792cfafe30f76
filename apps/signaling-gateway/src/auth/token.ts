import { TypeCompiler } from '@sinclair/typebox/compiler';
import {
  ANY_TOPIC,
  BaseError,
  CLOCK_TOLERANCE_SECONDS,
  grantsAnyTopic,
  SUBJECT_PATTERN,
  TOPIC_PATTERN,
  TokenClaims,
} from '@streamanchor/protocol';
import { type CryptoKey, errors as joseErrors, jwtVerify, type KeyObject, SignJWT } from 'jose';

/** The only algorithm the gateway signs or accepts. */
export const TOKEN_ALGORITHM = 'HS256';
/**
 * Allowed clock skew between the token's issuer, the gateway and the relay, in seconds (one
 * value for every service, from packages/protocol).
 */
export { CLOCK_TOLERANCE_SECONDS };

const claimsChecker = TypeCompiler.Compile(TokenClaims);
const TOPIC_NAME = new RegExp(TOPIC_PATTERN);
const NO_TOPIC_GRANTED =
  "The token's claims are invalid (it grants no topic: topics and subscribe are both empty or absent)";
const SUBJECT_CHARACTERS = new RegExp(SUBJECT_PATTERN);

export type TokenErrorReason =
  | 'expired'
  | 'invalid_signature'
  | 'malformed'
  | 'algorithm'
  | 'claims'
  | 'audience'
  | 'issuer'
  | 'issued_in_future'
  | 'lifetime'
  | 'subject';

/** A bearer token was presented but cannot be accepted. `reason` is safe to show to the client. */
export class TokenError extends BaseError<{ reason: TokenErrorReason; cause?: unknown }> {
  override name = 'TokenError';
  constructor(shortMessage: string, details: { reason: TokenErrorReason; cause?: unknown }) {
    super(shortMessage, { details, cause: details.cause });
  }
}

export function secretKey(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

/** An HS256 key as verifyToken takes it: the secret's bytes, or a key imported once from them. */
export type VerifyKey = Uint8Array | CryptoKey | KeyObject;

/**
 * Imports the secret once as a WebCrypto HMAC SHA-256 verification key. jose re-imports a
 * Uint8Array key on every jwtVerify call; a CryptoKey it uses as is (about half the time).
 */
export function importVerifyKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['verify'],
  );
}

export interface VerifyOptions {
  /** Defaults to the current time. */
  now?: Date;
  /** When set, the token must carry an `aud` equal to (or listing) it. */
  audience?: string;
  /** When set, the token must carry this `iss`. */
  issuer?: string;
  /** Longest accepted lifetime, `exp − iat` (or `exp − now` without `iat`), in seconds. */
  maxLifetimeSeconds?: number;
}

/**
 * Verifies an HS256 JWT and validates its claims against TokenClaims. The checks, in order
 * (the first failing one is reported):
 * 1. signature, algorithm (HS256 only), `exp` present, `nbf` (with CLOCK_TOLERANCE_SECONDS),
 *    `aud` and `iss` when configured;
 * 2. `sub` holds no control characters or unpaired surrogates;
 * 3. the claims' shapes (TokenClaims), and at least one topic granted in `topics` or
 *    `subscribe` (a token that grants nothing is a mistake, not a session);
 * 4. `iat` not more than CLOCK_TOLERANCE_SECONDS in the future;
 * 5. the lifetime is at most `maxLifetimeSeconds`;
 * 6. not expired: the gateway refuses a token from its `exp` on, so that the relay, which
 *    accepts it until `exp + CLOCK_TOLERANCE_SECONDS` (tokenExpiredFrom), never refuses a
 *    session the gateway accepted. The tolerance is the relay's margin, not the gateway's.
 */
export async function verifyToken(
  token: string,
  key: VerifyKey,
  options: VerifyOptions | Date = {},
): Promise<TokenClaims> {
  const {
    now = new Date(),
    audience,
    issuer,
    maxLifetimeSeconds,
  } = options instanceof Date ? { now: options } : options;
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: [TOKEN_ALGORITHM],
      requiredClaims: ['exp', ...(audience ? ['aud'] : []), ...(issuer ? ['iss'] : [])],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      currentDate: now,
      ...(audience ? { audience } : {}),
      ...(issuer ? { issuer } : {}),
    }));
  } catch (error) {
    throw classify(error);
  }
  if (typeof payload.sub === 'string' && !SUBJECT_CHARACTERS.test(payload.sub)) {
    throw new TokenError(
      "The token's sub must not contain control characters (U+0000–U+001F, U+007F) or unpaired surrogates",
      { reason: 'subject' },
    );
  }
  if (!claimsChecker.Check(payload)) {
    const first = claimsChecker.Errors(payload).First();
    const where = first ? `${first.path || '(root)'}: ${first.message}` : 'claims do not match';
    throw new TokenError(`The token's claims are invalid (${where})`, { reason: 'claims' });
  }
  if (!grantsAnyTopic(payload)) {
    throw new TokenError(NO_TOPIC_GRANTED, { reason: 'claims' });
  }
  const nowSeconds = now.getTime() / 1000;
  if (payload.iat !== undefined && payload.iat > nowSeconds + CLOCK_TOLERANCE_SECONDS) {
    throw new TokenError('The token is issued in the future (iat is ahead of the clock)', {
      reason: 'issued_in_future',
    });
  }
  if (maxLifetimeSeconds !== undefined) {
    const lifetime = payload.exp - (payload.iat ?? Math.floor(nowSeconds));
    if (lifetime > maxLifetimeSeconds) {
      throw new TokenError(
        `The token lives too long (exp − iat is ${lifetime} s; at most ${maxLifetimeSeconds} s)`,
        { reason: 'lifetime' },
      );
    }
  }
  if (now.getTime() >= payload.exp * 1000) {
    throw new TokenError('The token has expired', { reason: 'expired' });
  }
  return payload;
}

function classify(error: unknown): TokenError {
  if (error instanceof joseErrors.JWTExpired) {
    return new TokenError('The token has expired', { reason: 'expired', cause: error });
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) {
    return new TokenError(`The token must be signed with ${TOKEN_ALGORITHM}`, {
      reason: 'algorithm',
      cause: error,
    });
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new TokenError('The token signature is invalid', {
      reason: 'invalid_signature',
      cause: error,
    });
  }
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') {
      return new TokenError("The token's aud does not name this service", {
        reason: 'audience',
        cause: error,
      });
    }
    if (error.claim === 'iss') {
      return new TokenError("The token's iss is not the accepted issuer", {
        reason: 'issuer',
        cause: error,
      });
    }
    return new TokenError(`The token's claims are invalid (${error.claim}: ${error.reason})`, {
      reason: 'claims',
      cause: error,
    });
  }
  return new TokenError('The token is malformed', { reason: 'malformed', cause: error });
}

export interface MintTokenOptions {
  secret: string;
  subject: string;
  /** Topics the bearer may publish to (may be empty when `subscribe` grants some). */
  topics: readonly string[];
  /** Topics the bearer may subscribe to; omitted or empty: none (no `subscribe` claim). */
  subscribe?: readonly string[];
  /** Lifetime from now, in seconds. */
  ttlSeconds: number;
  /** Defaults to the current time; tests pass another to mint expired tokens. */
  now?: Date;
  /** `aud` and `iss` claims (needed when the gateway sets JWT_AUDIENCE / JWT_ISSUER). */
  audience?: string;
  issuer?: string;
}

/** Mints an HS256 bearer token the gateway accepts (for the CLI, the local stack and tests). */
export async function mintToken({
  secret,
  subject,
  topics,
  subscribe = [],
  ttlSeconds,
  now = new Date(),
  audience,
  issuer,
}: MintTokenOptions): Promise<string> {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0)
    throw new RangeError('ttlSeconds must be a positive integer');
  const iat = Math.floor(now.getTime() / 1000);
  for (const topic of [...topics, ...subscribe]) {
    if (topic !== ANY_TOPIC && !TOPIC_NAME.test(topic)) {
      throw new TypeError(
        `invalid topic "${topic}": topics match ${TOPIC_PATTERN} (or are ${ANY_TOPIC})`,
      );
    }
  }
  // No subscription is no `subscribe` claim, so such tokens stay as they were.
  const grants = {
    topics: [...topics],
    ...(subscribe.length > 0 ? { subscribe: [...subscribe] } : {}),
  };
  const claims = { sub: subject, ...grants, iat, exp: iat + ttlSeconds };
  if (!claimsChecker.Check(claims)) {
    const first = claimsChecker.Errors(claims).First();
    throw new TypeError(
      `invalid token claims: ${first ? `${first.path} ${first.message}` : 'unknown'}`,
    );
  }
  if (!grantsAnyTopic(claims)) {
    throw new TypeError('invalid token claims: grant at least one topic in topics or subscribe');
  }
  const jwt = new SignJWT(grants);
  if (audience) jwt.setAudience(audience);
  if (issuer) jwt.setIssuer(issuer);
  return jwt
    .setProtectedHeader({ alg: TOKEN_ALGORITHM, typ: 'JWT' })
    .setSubject(subject)
    .setIssuedAt(iat)
    .setExpirationTime(claims.exp)
    .sign(secretKey(secret));
}
