import { describe, expect, test } from 'vitest';
import { BaseError, walkError } from './errors';
import { MerkleInputError } from './merkle';
import { NonCanonicalPayloadError } from './record';

class Outer extends BaseError<{ step: string }> {
  override name = 'Outer';
}

describe('BaseError', () => {
  test('default: shortMessage, details, message and cause', () => {
    const cause = new Error('socket closed');
    const error = new Outer('could not send', { details: { step: 'send' }, cause });
    expect(error.shortMessage).toBe('could not send');
    expect(error.details).toEqual({ step: 'send' });
    expect(error.message).toBe('could not send');
    expect(error.cause).toBe(cause);
    expect(error.name).toBe('Outer');
    expect(new BaseError('x', { message: 'x (more)' }).message).toBe('x (more)');
    expect('cause' in new BaseError('no cause')).toBe(false);
  });

  test('behavior: walk() returns the deepest cause, or the first match of a predicate', () => {
    const root = new TypeError('fetch failed');
    const plain = new Error('wrapped by someone else', { cause: root });
    const top = new Outer('outer', { details: { step: 'a' }, cause: plain });
    expect(top.walk()).toBe(root);
    expect(top.walk((e) => e instanceof Outer)).toBe(top);
    expect(top.walk((e) => e === plain)).toBe(plain);
    expect(top.walk((e) => e instanceof RangeError)).toBeNull();
    expect(new BaseError('leaf').walk()).toBeInstanceOf(BaseError);
  });

  test('error: walk() stops on a cycle and on non-error causes', () => {
    const a = new BaseError('a');
    const b = new BaseError('b', { cause: a });
    Object.defineProperty(a, 'cause', { value: b });
    expect(b.walk()).toBe(a);
    expect(b.walk((e) => e === 'never')).toBeNull();
    expect(walkError(new BaseError('x', { cause: 'a string' }))).toBe('a string');
    expect(walkError('not an error')).toBe('not an error');
  });

  test("behavior: the protocol's own errors extend it", () => {
    expect(new NonCanonicalPayloadError('lone surrogate')).toBeInstanceOf(BaseError);
    expect(new NonCanonicalPayloadError('lone surrogate').message).toBe('lone surrogate');
    expect(new MerkleInputError('no leaves').shortMessage).toBe('no leaves');
  });
});
