/**
 * A process-local map of at most `maxEntries` values, each valid from the time it was stored
 * (`from`) until `until` (ms since the epoch, exclusive). When full, the oldest insertion
 * goes first; expired entries go when they are looked up. A lookup at a time outside an
 * entry's [from, until) (the wall clock moved back, or the entry expired) finds nothing.
 */
export class BoundedCache<V> {
  readonly #entries = new Map<string, { value: V; from: number; until: number }>();

  constructor(readonly maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError('maxEntries must be a positive integer');
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string, now: number): { value: V; until: number } | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (now >= entry.until) {
      this.#entries.delete(key);
      return undefined;
    }
    return now >= entry.from ? entry : undefined;
  }

  set(key: string, value: V, from: number, until: number): void {
    if (until <= from) return;
    this.#entries.delete(key);
    if (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { value, from, until });
  }
}
