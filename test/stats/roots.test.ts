import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { findRoot } from '../../src/stats/roots.ts';

describe('stats/roots: Brent', () => {
  it('finds √2 and the root of cos x − x to full precision', () => {
    expect(findRoot((x) => x * x - 2, 0, 2)).toBeCloseTo(Math.SQRT2, 14);
    expect(findRoot((x) => Math.cos(x) - x, 0, 1)).toBeCloseTo(0.7390851332151607, 14);
  });

  it('finds a root next to a pole, as the secular equation needs', () => {
    // 1/(1 + x) − 0.5 has its root at 1 and a pole at −1.
    expect(findRoot((x) => 1 / (1 + x) - 0.5, -1 + 1e-9, 100)).toBeCloseTo(1, 12);
  });

  it('returns an end that is already a root', () => {
    expect(findRoot((x) => x - 3, 3, 5)).toBe(3);
    expect(findRoot((x) => x - 5, 3, 5)).toBe(5);
  });

  it('recovers the root of any increasing cubic bracketed around it', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -50, max: 50, noNaN: true }),
        fc.double({ min: 0.01, max: 10, noNaN: true }),
        (root, slope) => {
          const f = (x: number): number => (x - root) ** 3 + slope * (x - root);
          expect(findRoot(f, root - 60, root + 70)).toBeCloseTo(root, 9);
        },
      ),
    );
  });

  it('rejects a bracket without a sign change, saying what it found', () => {
    expect(() => findRoot((x) => x * x + 1, -1, 1)).toThrow(
      /expected a sign change on \[-1, 1\], received f\(lower\) = 2/,
    );
    expect(() => findRoot(() => Number.NaN, 0, 1)).toThrow(RangeError);
  });
});
