import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ANY_TOPIC, TOPIC_PATTERN, TokenClaims } from '@streamanchor/protocol';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';

/** The only algorithm the gateway signs or accepts. */
export const TOKEN_ALGORITHM = 'HS256';
/** Allowed clock skew between the token's issuer and the gateway, in seconds. */
export const CLOCK_TOLERANCE_SECONDS = 5;

const claimsChecker = TypeCompiler.Compile(TokenClaims);

/** A bearer token was presented but cannot be accepted. `reason` is safe to show to the client. */
export class TokenError extends Error {
  override name = 'TokenError';
  constructor(
    readonly shortMessage: string,
    readonly details: {
      reason: 'expired' | 'invalid_signature' | 'malformed' | 'algorithm' | 'claims';
      cause?: unknown;
    },
  ) {
    super(shortMessage, details.cause === undefined ? {} : { cause: details.cause });
  }
}

export function secretKey(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

/**
 * Verifies an HS256 JWT (algorithm pinned, `exp` required, 5 s clock tolerance) and
 * validates its claims against TokenClaims.
 */
export async function verifyToken(
  token: string,
  key: Uint8Array,
  now?: Date,
): Promise<TokenClaims> {
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: [TOKEN_ALGORITHM],
      requiredClaims: ['exp'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      ...(now ? { currentDate: now } : {}),
    }));
  } catch (error) {
    throw classify(error);
  }
  if (!claimsChecker.Check(payload)) {
    const first = claimsChecker.Errors(payload).First();
    const where = first ? `${first.path || '(root)'}: ${first.message}` : 'claims do not match';
    throw new TokenError(`The token's claims are invalid (${where})`, { reason: 'claims' });
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
  topics: readonly string[];
  /** Lifetime from now, in seconds. */
  ttlSeconds: number;
  /** Defaults to the current time; tests pass another to mint expired tokens. */
  now?: Date;
}

/** Mints an HS256 bearer token the gateway accepts (for the CLI, the local stack and tests). */
export async function mintToken({
  secret,
  subject,
  topics,
  ttlSeconds,
  now = new Date(),
}: MintTokenOptions): Promise<string> {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0)
    throw new RangeError('ttlSeconds must be a positive integer');
  const iat = Math.floor(now.getTime() / 1000);
  for (const topic of topics) {
    if (topic !== ANY_TOPIC && !new RegExp(TOPIC_PATTERN).test(topic)) {
      throw new TypeError(
        `invalid topic "${topic}": topics match ${TOPIC_PATTERN} (or are ${ANY_TOPIC})`,
      );
    }
  }
  const claims = { sub: subject, topics: [...topics], iat, exp: iat + ttlSeconds };
  if (!claimsChecker.Check(claims)) {
    const first = claimsChecker.Errors(claims).First();
    throw new TypeError(
      `invalid token claims: ${first ? `${first.path} ${first.message}` : 'unknown'}`,
    );
  }
  return new SignJWT({ topics: claims.topics })
    .setProtectedHeader({ alg: TOKEN_ALGORITHM, typ: 'JWT' })
    .setSubject(subject)
    .setIssuedAt(iat)
    .setExpirationTime(claims.exp)
    .sign(secretKey(secret));
}
