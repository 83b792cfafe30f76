import { Type } from '@sinclair/typebox';
import { BaseError } from '@streamanchor/protocol';
import { describe, expect, expectTypeOf, test } from 'vitest';
import { ConfigError, parseEnv } from './config';
import {
  ChainEnv,
  DatabaseEnv,
  DeploymentEnv,
  LOG_LEVELS,
  LogEnv,
  type LogLevel,
  REDIS_PREFIX_RULE,
  RedisEnv,
  RpcEnv,
  SessionRouteEnv,
} from './config-fragments';

const schema = Type.Object({ ...LogEnv, ...RedisEnv, ...DatabaseEnv });
const chain = Type.Object({ ...ChainEnv, ...RpcEnv, ...DeploymentEnv });

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => p.variable).sort();
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('config fragments', () => {
  test('default: the shared defaults apply', () => {
    expect(parseEnv('svc', schema, {})).toEqual({
      LOG_LEVEL: 'info',
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: 'sa',
      DATA_DIR: '.data',
    });
    expect(parseEnv('svc', Type.Object(SessionRouteEnv), {})).toEqual({ SESSION_TTL_MS: 30_000 });
  });

  test('behavior: LOG_LEVEL parses to a LogLevel, no cast needed', () => {
    const parsed = parseEnv('svc', schema, { LOG_LEVEL: 'debug' });
    expectTypeOf(parsed.LOG_LEVEL).toEqualTypeOf<LogLevel>();
    for (const level of LOG_LEVELS) {
      expect(parseEnv('svc', schema, { LOG_LEVEL: level }).LOG_LEVEL).toBe(level);
    }
  });

  test('behavior: the chain fragments convert and keep their values', () => {
    expect(
      parseEnv('svc', chain, {
        CHAIN_ID: '31337',
        CONTRACT_ADDRESS: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
        RPC_URL: 'https://rpc.example',
        DEPLOYMENT_BLOCK: '0',
      }),
    ).toEqual({
      CHAIN_ID: 31337,
      CONTRACT_ADDRESS: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
      RPC_URL: 'https://rpc.example',
      DEPLOYMENT_BLOCK: 0,
    });
  });

  test('behavior: a reader with its own default keeps the one REDIS_PREFIX rule', () => {
    const stack = Type.Object({
      REDIS_PREFIX: Type.String({ ...REDIS_PREFIX_RULE, default: 'sa-dev' }),
    });
    expect(parseEnv('stack', stack, {}).REDIS_PREFIX).toBe('sa-dev');
    expect(stack.properties.REDIS_PREFIX.pattern).toBe(RedisEnv.REDIS_PREFIX.pattern);
    expect(problemsOf(() => parseEnv('stack', stack, { REDIS_PREFIX: 'a:b' }))).toEqual([
      'REDIS_PREFIX',
    ]);
  });

  test('error: every bad shared variable is named, with its description', () => {
    let error: unknown;
    try {
      parseEnv('svc', schema, {
        LOG_LEVEL: 'loud',
        REDIS_URL: 'localhost:6379',
        REDIS_PREFIX: 'has:colon',
        DATABASE_URL: 'mysql://db',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toBeInstanceOf(BaseError);
    const configError = error as ConfigError;
    expect(configError.problems.map((p) => p.variable).sort()).toEqual([
      'DATABASE_URL',
      'LOG_LEVEL',
      'REDIS_PREFIX',
      'REDIS_URL',
    ]);
    expect(configError.message).toContain('one of fatal, error, warn, info, debug, trace, silent');
    expect(configError.shortMessage).toBe('Invalid configuration for svc');
    expect(configError.details.problems).toBe(configError.problems);
  });

  test('error: REDIS_PREFIX refuses colons, spaces and glob characters', () => {
    for (const prefix of ['a:b', 'a b', 'sa*', 'sa?', 'sa[1]']) {
      expect(problemsOf(() => parseEnv('svc', schema, { REDIS_PREFIX: prefix }))).toEqual([
        'REDIS_PREFIX',
      ]);
    }
    expect(parseEnv('svc', schema, { REDIS_PREFIX: 'sa-test_1.x' }).REDIS_PREFIX).toBe(
      'sa-test_1.x',
    );
  });

  test('error: the chain fragments refuse bad values', () => {
    expect(
      problemsOf(() =>
        parseEnv('svc', chain, {
          CHAIN_ID: '0',
          CONTRACT_ADDRESS: '0x1234',
          RPC_URL: 'ws://127.0.0.1:8546',
          DEPLOYMENT_BLOCK: '-1',
        }),
      ),
    ).toEqual(['CHAIN_ID', 'CONTRACT_ADDRESS', 'DEPLOYMENT_BLOCK', 'RPC_URL']);
    expect(
      problemsOf(() => parseEnv('svc', Type.Object(SessionRouteEnv), { SESSION_TTL_MS: '10' })),
    ).toEqual(['SESSION_TTL_MS']);
  });
});
