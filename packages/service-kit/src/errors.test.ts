import { BaseError } from '@streamanchor/protocol';
import { describe, expect, test } from 'vitest';
import { ServiceError } from './errors';

describe('ServiceError', () => {
  test('default: the message carries the short message and the details', () => {
    const error = new ServiceError('chain id mismatch', { expected: 1, actual: 2 });
    expect(error.shortMessage).toBe('chain id mismatch');
    expect(error.details).toEqual({ expected: 1, actual: 2 });
    expect(error.message).toBe('chain id mismatch {"expected":1,"actual":2}');
  });

  test('behavior: without details the message is the short message', () => {
    expect(new ServiceError('stopped').message).toBe('stopped');
  });

  test('behavior: the cause is kept', () => {
    const cause = new Error('socket closed');
    expect(new ServiceError('rpc failed', {}, { cause }).cause).toBe(cause);
  });
});

describe('ServiceError.walk', () => {
  test('default: without a predicate it returns the deepest cause', () => {
    const root = new Error('ECONNRESET');
    const middle = new ServiceError('rpc failed', {}, { cause: root });
    const top = new ServiceError('anchor failed', { batchId: 1 }, { cause: middle });
    expect(top.walk()).toBe(root);
    expect(new ServiceError('alone').walk()).toBeInstanceOf(ServiceError);
  });

  test('behavior: with a predicate it returns the first match, itself included, or null', () => {
    const root = new Error('ECONNRESET');
    const middle = new ServiceError('rpc failed', { url: 'x' }, { cause: root });
    const top = new ServiceError('anchor failed', {}, { cause: middle });
    expect(top.walk((e) => e instanceof ServiceError)).toBe(top);
    expect(top.walk((e) => (e as ServiceError).shortMessage === 'rpc failed')).toBe(middle);
    expect(top.walk((e) => e === root)).toBe(root);
    expect(top.walk((e) => e instanceof TypeError)).toBeNull();
  });

  test('behavior: it is the shared base, so a protocol BaseError predicate matches', () => {
    const error = new ServiceError('x');
    expect(error).toBeInstanceOf(BaseError);
    expect(error.name).toBe('ServiceError');
  });
});
