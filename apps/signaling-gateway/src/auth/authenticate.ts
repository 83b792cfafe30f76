import type { TokenClaims } from '@streamanchor/protocol';
import type { FastifyRequest } from 'fastify';
import { ProblemError } from '../errors';
import { secretKey, TokenError, type VerifyOptions, verifyToken } from './token';

/** Longest Authorization header value worth looking at; real tokens are a few hundred bytes. */
const MAX_AUTHORIZATION_LENGTH = 8192;

export type Authenticate = (request: FastifyRequest) => Promise<TokenClaims>;

/**
 * Builds the bearer-token check routes call: returns the token's claims, or throws a
 * 401 problem carrying `WWW-Authenticate: Bearer` (plus error="invalid_token" when a token
 * was presented but rejected, RFC 6750).
 */
export function createAuthenticator({
  secret,
  ...checks
}: { secret: string } & Omit<VerifyOptions, 'now'>): Authenticate {
  const key = secretKey(secret);
  return async (request) => {
    const header = request.headers.authorization;
    if (typeof header !== 'string' || !/^Bearer(\s|$)/i.test(header)) {
      throw new ProblemError('unauthorized', 'Send Authorization: Bearer <token>', {
        headers: { 'WWW-Authenticate': 'Bearer' },
      });
    }
    try {
      const token =
        header.length <= MAX_AUTHORIZATION_LENGTH
          ? /^Bearer +(\S+) *$/i.exec(header)?.[1]
          : undefined;
      if (!token) throw new TokenError('The token is malformed', { reason: 'malformed' });
      return await verifyToken(token, key, { ...checks, now: new Date() });
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      throw new ProblemError('unauthorized', error.shortMessage, {
        headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
        cause: error,
      });
    }
  };
}
