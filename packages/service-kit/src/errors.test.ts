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
