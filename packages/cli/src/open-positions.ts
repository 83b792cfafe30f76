/**
 * The positions a subscriber printed whose batch it has not seen become `final`, as ascending
 * inclusive ranges. On resume, `anchoringAfter` (docs/protocol.md §5.9) is the lowest of them
 * minus 1: the relay replays the anchoring changes it kept of their batches.
 */
export class OpenPositions {
  #ranges: [number, number][] = [];

  /** A position printed (ascending, as a subscription delivers them; repeats are ignored). */
  add(position: number): void {
    const last = this.#ranges[this.#ranges.length - 1];
    if (last && position <= last[1]) return;
    if (last && position === last[1] + 1) last[1] = position;
    else this.#ranges.push([position, position]);
  }

  /** Positions a `final` batch holds: settled, their anchoring no longer changes. */
  settle(ranges: readonly (readonly [number, number])[]): void {
    for (const [first, last] of ranges) {
      this.#ranges = this.#ranges.flatMap(([from, to]): [number, number][] => {
        if (last < from || first > to) return [[from, to]];
        const kept: [number, number][] = [];
        if (from < first) kept.push([from, first - 1]);
        if (to > last) kept.push([last + 1, to]);
        return kept;
      });
    }
  }

  /** `anchoringAfter` for a resume after `after`: below every open position, at most `after`. */
  anchoringAfter(after: number): number {
    const lowest = this.#ranges[0]?.[0];
    return lowest === undefined ? after : Math.min(after, lowest - 1);
  }

  get ranges(): readonly (readonly [number, number])[] {
    return this.#ranges;
  }
}
