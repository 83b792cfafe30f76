import { describe, expect, it } from 'vitest';
import { OpenPositions } from './open-positions';

describe('OpenPositions (where a resumed subscribe asks anchoring changes from)', () => {
  it('default: printed positions stay open until a final batch holds them', () => {
    const open = new OpenPositions();
    for (const position of [3, 4, 5, 6, 9, 10]) open.add(position);
    expect(open.ranges).toEqual([
      [3, 6],
      [9, 10],
    ]);
    expect(open.anchoringAfter(10)).toBe(2);
    open.settle([[1, 4]]);
    expect(open.ranges).toEqual([
      [5, 6],
      [9, 10],
    ]);
    expect(open.anchoringAfter(10)).toBe(4);
    open.settle([
      [5, 5],
      [9, 12],
    ]);
    expect(open.ranges).toEqual([[6, 6]]);
    open.settle([[6, 6]]);
    expect(open.anchoringAfter(10)).toBe(10);
  });

  it('behavior: a final batch in the middle of a range splits it; repeats are ignored', () => {
    const open = new OpenPositions();
    for (const position of [1, 2, 3, 4, 5, 5, 4]) open.add(position);
    open.settle([[2, 3]]);
    expect(open.ranges).toEqual([
      [1, 1],
      [4, 5],
    ]);
    open.add(6);
    expect(open.ranges).toEqual([
      [1, 1],
      [4, 6],
    ]);
  });
});
