import { Type } from '@sinclair/typebox';
import { describe, expect, test } from 'vitest';
import { ConfigError, parseEnv } from './config';

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
