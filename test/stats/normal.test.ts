import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { erfc, normalCdf, normalQuantile } from '../../src/stats/normal.ts';

// Reference values from Python's math.erfc and statistics.NormalDist (independent implementations).
const ERFC: ReadonlyArray<[number, number]> = [
  [0.1, 0.8875370839817152],
  [0.5, 0.4795001221869535],
  [1, 0.15729920705028513],
  [2, 0.004677734981047265],
  [2.4, 0.0006885138966450789], // last point of the series branch
  [2.6, 0.00023603441652934908], // first points of the continued fraction
  [3, 2.2090496998585438e-5],
  [5, 1.5374597944280351e-12],
  [10, 2.088487583762545e-45],
];

function relative(actual: number, expected: number): number {
  return expected === 0 ? Math.abs(actual) : Math.abs(actual - expected) / Math.abs(expected);
}

describe('stats/normal: erfc', () => {
  it.each(ERFC)('erfc(%d) has relative error below 1e-12', (x, expected) => {
    expect(relative(erfc(x), expected)).toBeLessThan(1e-12);
  });

  it('is 2 - erfc(-x) for negative x and NaN for NaN', () => {
    expect(erfc(-1)).toBeCloseTo(2 - 0.15729920705028513, 15);
    expect(erfc(0)).toBe(1);
    expect(erfc(Number.NaN)).toBeNaN();
  });
});

describe('stats/normal: CDF', () => {
  it.each([
    [0, 0.5],
    [-1, 0.15865525393145707],
    [1.96, 0.9750021048517795],
    [-5, 2.866515718791946e-7],
    [-10, 7.619853024160593e-24],
    [-20, 2.7536241186063314e-89],
  ])('Φ(%d) keeps relative accuracy, including the deep lower tail', (x, expected) => {
    expect(relative(normalCdf(x), expected)).toBeLessThan(1e-12);
  });

  it('is symmetric: Φ(x) + Φ(−x) = 1', () => {
    fc.assert(
      fc.property(fc.double({ min: -8, max: 8, noNaN: true }), (x) => {
        expect(normalCdf(x) + normalCdf(-x)).toBeCloseTo(1, 14);
      }),
    );
  });
});

describe('stats/normal: quantile', () => {
  it.each([
    [0.975, 1.9599639845400536],
    [0.05, -1.6448536269514726],
    [0.5, 0],
    [1e-10, -6.361340902404056],
    [0.999, 3.090232306167813],
    [1e-300, -37.0470962993612],
  ])('Φ⁻¹(%d) matches to 1e-12', (p, expected) => {
    expect(Math.abs(normalQuantile(p) - expected)).toBeLessThan(1e-12);
  });

  it('inverts the CDF across (0, 1)', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-12, max: 1 - 1e-12, noNaN: true }), (p) => {
        expect(relative(normalCdf(normalQuantile(p)), p)).toBeLessThan(1e-9);
      }),
    );
  });

  it('maps the ends to infinities and rejects non-probabilities', () => {
    expect(normalQuantile(0)).toBe(Number.NEGATIVE_INFINITY);
    expect(normalQuantile(1)).toBe(Number.POSITIVE_INFINITY);
    expect(() => normalQuantile(1.5)).toThrow(/expected a probability in \[0, 1\], received 1.5/);
    expect(() => normalQuantile(Number.NaN)).toThrow(RangeError);
  });
});
