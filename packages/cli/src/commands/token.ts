/**
 * `streamanchor token`: mints an HS256 bearer token the gateway accepts (docs/protocol.md §2)
 * and prints only the token, so scripts can capture it.
 *
 * The same token as the gateway's `pnpm run token` (apps/signaling-gateway/src/auth/token.ts,
 * mintToken): signed with `jose`, its claims checked against the protocol's TokenClaims. It
 * does not import the gateway, whose package loads its whole HTTP server (fastify, BullMQ,
 * ioredis: seconds of start-up for one signature).
 */
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ANY_TOPIC, grantsAnyTopic, TOPIC_PATTERN, TokenClaims } from '@streamanchor/protocol';
import { ConfigError, JWT_SECRET_RULE, parseEnv } from '@streamanchor/service-kit';
import { SignJWT } from 'jose';
import { CommandError, integer, list, parseCommandArgs, UsageError } from '../args';
import type { Command } from '../command';

export const TOKEN_USAGE = `usage: streamanchor token --sub <subject> [--topics <topic,topic|*>] [--subscribe <topic,topic|*>] [--ttl <seconds>]

Mints an HS256 bearer token and prints it. --topics grants publishing, --subscribe
subscribing (at least one of them; '*' grants every topic); --ttl is its lifetime
(default 3600 s; the gateway accepts at most its MAX_TOKEN_TTL_SECONDS, 86400 by default).
Environment: JWT_SECRET (the gateway's, at least 32 characters; the dev stack keeps its own
in .data/jwt-secret), JWT_AUDIENCE and JWT_ISSUER (when set, the aud and iss claims).`;

const TokenEnv = Type.Object({
  JWT_SECRET: Type.String({
    ...JWT_SECRET_RULE,
    description: 'the HS256 secret of the gateway (at least 32 characters)',
  }),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
});

const claimsChecker = TypeCompiler.Compile(TokenClaims);
const TOPIC_NAME = new RegExp(TOPIC_PATTERN);

export interface MintOptions {
  secret: string;
  subject: string;
  topics: readonly string[];
  subscribe: readonly string[];
  ttlSeconds: number;
  audience?: string;
  issuer?: string;
  now?: Date;
}

/** The token, or a UsageError naming what is wrong with the claims. */
export async function mint(options: MintOptions): Promise<string> {
  for (const topic of [...options.topics, ...options.subscribe]) {
    if (topic !== ANY_TOPIC && !TOPIC_NAME.test(topic)) {
      throw new UsageError(
        `invalid topic "${topic}": topics match ${TOPIC_PATTERN} (or are ${ANY_TOPIC})`,
      );
    }
  }
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  // No subscription is no `subscribe` claim, as the gateway's tokens.
  const grants = {
    topics: [...options.topics],
    ...(options.subscribe.length > 0 ? { subscribe: [...options.subscribe] } : {}),
  };
  const claims = { sub: options.subject, ...grants, iat, exp: iat + options.ttlSeconds };
  if (!claimsChecker.Check(claims)) {
    const first = claimsChecker.Errors(claims).First();
    throw new UsageError(
      `invalid token claims: ${first ? `${first.path} ${first.message}` : 'unknown'}`,
    );
  }
  if (!grantsAnyTopic(claims)) {
    throw new UsageError('grant at least one topic, with --topics or --subscribe');
  }
  const jwt = new SignJWT(grants);
  if (options.audience) jwt.setAudience(options.audience);
  if (options.issuer) jwt.setIssuer(options.issuer);
  return jwt
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.subject)
    .setIssuedAt(iat)
    .setExpirationTime(claims.exp)
    .sign(new TextEncoder().encode(options.secret));
}

export const token: Command = {
  usage: TOKEN_USAGE,
  async run(argv, io) {
    const { values } = parseCommandArgs(argv, {
      sub: { type: 'string' },
      topics: { type: 'string' },
      subscribe: { type: 'string' },
      ttl: { type: 'string', default: '3600' },
    });
    if (values.help) {
      io.out(TOKEN_USAGE);
      return 0;
    }
    if (!values.sub) throw new UsageError('--sub is required');
    if (values.topics === undefined && values.subscribe === undefined) {
      throw new UsageError('--topics or --subscribe (or both) is required');
    }
    const ttlSeconds = integer(values.ttl, '--ttl', 1)!;
    if (!io.env.JWT_SECRET) {
      throw new CommandError(
        "JWT_SECRET is not set: the gateway's HS256 secret (the dev stack keeps its own in .data/jwt-secret)",
      );
    }
    let env: ReturnType<typeof parseEnv<typeof TokenEnv>>;
    try {
      env = parseEnv('streamanchor token', TokenEnv, io.env);
    } catch (error) {
      if (error instanceof ConfigError) {
        throw new CommandError(error.problems.map((p) => `${p.variable}: ${p.message}`).join('; '));
      }
      throw error;
    }
    io.out(
      await mint({
        secret: env.JWT_SECRET,
        subject: values.sub,
        topics: list(values.topics),
        subscribe: list(values.subscribe),
        ttlSeconds,
        audience: env.JWT_AUDIENCE,
        issuer: env.JWT_ISSUER,
      }),
    );
    return 0;
  },
};
