import { describe, expect, test } from 'vitest';
import { createSubjectQuotas, createTokenBucket, takeFromAll } from './quota';

describe('token bucket', () => {
  test('default: starts full with `burst` tokens, then refuses with the wait for the next one', () => {
    const bucket = createTokenBucket({ ratePerSecond: 10, burst: 3 });
    const t = 1_000_000;
    expect([bucket.take(t), bucket.take(t), bucket.take(t)]).toEqual([true, true, true]);
    expect(bucket.take(t)).toBe(false);
    expect(bucket.retryAfter(t)).toBe(100);
    expect(bucket.retryAfter(t + 40)).toBe(60);
  });

  test('behavior: refills at `ratePerSecond`, never beyond `burst`', () => {
    const bucket = createTokenBucket({ ratePerSecond: 10, burst: 2 });
    const t = 5_000;
    bucket.take(t);
    bucket.take(t);
    expect(bucket.retryAfter(t + 100)).toBe(0);
    expect(bucket.take(t + 100)).toBe(true);
    expect(bucket.take(t + 100)).toBe(false);
    // A long pause fills it to burst only.
    expect([bucket.take(t + 60_000), bucket.take(t + 60_000), bucket.take(t + 60_000)]).toEqual([
      true,
      true,
      false,
    ]);
  });

  test('behavior: rate 0 is unlimited', () => {
    const bucket = createTokenBucket({ ratePerSecond: 0, burst: 1 });
    for (let i = 0; i < 1000; i++) expect(bucket.take(0)).toBe(true);
    expect(bucket.retryAfter(0)).toBe(0);
  });

  test('error: a clock going backwards adds no tokens', () => {
    const bucket = createTokenBucket({ ratePerSecond: 1000, burst: 1 });
    expect(bucket.take(10_000)).toBe(true);
    expect(bucket.take(5_000)).toBe(false);
    expect(bucket.retryAfter(5_000)).toBe(1);
  });
});

describe('takeFromAll', () => {
  test('default: takes one token from each bucket', () => {
    const a = createTokenBucket({ ratePerSecond: 1, burst: 1 });
    const b = createTokenBucket({ ratePerSecond: 1, burst: 2 });
    expect(takeFromAll([a, b], 0)).toBe(0);
    expect(a.retryAfter(0)).toBe(1000);
    expect(b.retryAfter(0)).toBe(0);
  });

  test('error: when one bucket is empty nothing is taken from the others; the longest wait is reported', () => {
    const empty = createTokenBucket({ ratePerSecond: 4, burst: 1 });
    empty.take(0);
    const full = createTokenBucket({ ratePerSecond: 1, burst: 1 });
    expect(takeFromAll([full, empty], 0)).toBe(250);
    expect(full.retryAfter(0)).toBe(0);
  });
});

describe('subject quotas', () => {
  test('default: sessions of one subject share one bucket; others have their own', () => {
    const quotas = createSubjectQuotas({ ratePerSecond: 1, burst: 2 });
    const a1 = quotas.acquire('alice');
    const a2 = quotas.acquire('alice');
    const b = quotas.acquire('bob');
    expect(a1).toBe(a2);
    expect([a1.take(0), a2.take(0), a1.take(0)]).toEqual([true, true, false]);
    expect(b.take(0)).toBe(true);
    expect(quotas.size).toBe(2);
  });

  test('behavior: a released bucket is kept until it has refilled, then dropped', () => {
    let now = 0;
    const quotas = createSubjectQuotas({ ratePerSecond: 1, burst: 2 }, () => now);
    const first = quotas.acquire('alice');
    quotas.acquire('alice');
    quotas.release('alice');
    expect(quotas.acquire('alice')).toBe(first);
    expect([first.take(now), first.take(now), first.take(now)]).toEqual([true, true, false]);
    quotas.release('alice');
    quotas.release('alice');
    // Closing every session and opening a new one gives no fresh burst.
    now = 1000;
    const again = quotas.acquire('alice');
    expect(again).toBe(first);
    expect([again.take(now), again.take(now)]).toEqual([true, false]);
    quotas.release('alice');
    // Refilled (burst ÷ rate = 2 s after the release): dropped, a new one is the same.
    now = 3000;
    quotas.release('nobody');
    expect(quotas.size).toBe(0);
  });
});
