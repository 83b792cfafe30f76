import { createLogger } from '@streamanchor/service-kit';
import { describe, expect, test } from 'vitest';
import { createPublicAddress } from './public-address';

const logger = createLogger({ service: 'test', level: 'silent' });

describe('ICE_PUBLIC_ADDRESS', () => {
  test('default: none configured, none announced', async () => {
    const address = createPublicAddress(undefined, { logger });
    await address.start();
    expect(address.current()).toBeUndefined();
  });

  test('behavior: an IP address is used as it is, never looked up', async () => {
    const lookups: string[] = [];
    const address = createPublicAddress('2001:db8::7', {
      logger,
      resolve: async (name) => {
        lookups.push(name);
        return '192.0.2.1';
      },
    });
    await address.start();
    expect(address.current()).toBe('2001:db8::7');
    expect(lookups).toEqual([]);
  });

  test('behavior: a hostname is resolved at start and again later; a failed lookup keeps the last address', async () => {
    const answers: (string | Error)[] = ['192.0.2.1', new Error('ENOTFOUND'), '192.0.2.2'];
    const address = createPublicAddress('relay-1.example.net', {
      logger,
      refreshMs: 10,
      resolve: async (name) => {
        expect(name).toBe('relay-1.example.net');
        const next = answers.shift() ?? '192.0.2.2';
        if (next instanceof Error) throw next;
        return next;
      },
    });
    await address.start();
    expect(address.current()).toBe('192.0.2.1');
    await expect.poll(() => answers.length).toBe(0);
    await expect.poll(() => address.current()).toBe('192.0.2.2');
    address.stop();
  });

  test('error: a hostname that does not resolve stops the start', async () => {
    const address = createPublicAddress('nowhere.invalid', {
      logger,
      resolve: async () => {
        throw new Error('ENOTFOUND');
      },
    });
    await expect(address.start()).rejects.toThrow(/ICE_PUBLIC_ADDRESS nowhere\.invalid/);
  });
});
