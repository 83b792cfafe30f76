import { Type } from '@sinclair/typebox';
import { describe, expect, test, vi } from 'vitest';
import { ConfigError, loadConfigOrExit, parseEnv } from './config';

const schema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  SECRET: Type.String({ minLength: 8, description: 'at least 8 characters' }),
  VERBOSE: Type.Boolean({ default: false }),
  OPTIONAL_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
});

describe('parseEnv', () => {
  test('default: converts and applies defaults', () => {
    expect(
      parseEnv('svc', schema, { SECRET: 'abcdefgh', VERBOSE: 'true', UNRELATED: 'x' }),
    ).toEqual({
      PORT: 8080,
      SECRET: 'abcdefgh',
      VERBOSE: true,
    });
  });

  test('behavior: empty strings count as unset', () => {
    expect(parseEnv('svc', schema, { SECRET: 'abcdefgh', PORT: '' }).PORT).toBe(8080);
  });

  test('error: names every bad variable, with its description', () => {
    let error: unknown;
    try {
      parseEnv('svc', schema, { PORT: 'eighty', SECRET: 'short', OPTIONAL_URL: 'ftp://x' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { problems, message } = error as ConfigError;
    expect(problems.map((p) => p.variable).sort()).toEqual(['OPTIONAL_URL', 'PORT', 'SECRET']);
    expect(message).toContain('Invalid configuration for svc');
    expect(message).toContain('at least 8 characters');
  });

  test('error: a missing required variable', () => {
    expect(() => parseEnv('svc', schema, {})).toThrow(/SECRET/);
  });
});

describe('loadConfigOrExit', () => {
  test('default: returns what the loader returns', () => {
    expect(loadConfigOrExit(() => parseEnv('svc', schema, { SECRET: 'abcdefgh' })).PORT).toBe(8080);
  });

  test('error: a ConfigError prints its message and exits 1', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      throw new Error(`exit ${code}`);
    }) as typeof process.exit);
    const print = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(() => loadConfigOrExit(() => parseEnv('svc', schema, {}))).toThrow('exit 1');
      expect(print.mock.calls[0]?.[0]).toContain('SECRET');
    } finally {
      exit.mockRestore();
      print.mockRestore();
    }
  });

  test('error: other errors are rethrown', () => {
    expect(() =>
      loadConfigOrExit(() => {
        throw new TypeError('boom');
      }),
    ).toThrow('boom');
  });
});
