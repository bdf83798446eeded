import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mleWithExpectedScore, mleWithTValue, llrNormalized } from '../../src/stats/llr.ts';
import { empiricalDistribution, moments, type GameResults } from '../../src/stats/results.ts';

const count = fc.integer({ min: 0, max: 100_000 });
const results: fc.Arbitrary<GameResults> = fc
  .oneof(fc.tuple(count, count, count), fc.tuple(count, count, count, count, count))
  .filter((r) => r.some((n) => n > 0));

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

describe('stats/llr: constrained maximum-likelihood distributions', () => {
  it('with an expected score: a distribution whose mean is that score', () => {
    fc.assert(
      fc.property(results, fc.double({ min: 0.01, max: 0.99, noNaN: true }), (r, score) => {
        const { values, probabilities } = empiricalDistribution(r);
        const p = mleWithExpectedScore(values, probabilities, score);
        // Near a pole (a regularised zero count) the root's last digits are noise: 1e-7 is what holds.
        expect(sum(p)).toBeCloseTo(1, 7);
        expect(moments(values, p).mean).toBeCloseTo(score, 7);
        for (const pi of p) expect(pi).toBeGreaterThan(0);
      }),
    );
  });

  it('with a t-value: a distribution whose (μ − ½)/σ is that t, even far from the data', () => {
    fc.assert(
      fc.property(results, fc.double({ min: -2.5, max: 2.5, noNaN: true }), (r, t) => {
        const { values, probabilities } = empiricalDistribution(r);
        const p = mleWithTValue(values, probabilities, 0.5, t);
        const { mean, variance } = moments(values, p);
        expect(sum(p)).toBeCloseTo(1, 6);
        expect((mean - 0.5) / Math.sqrt(variance)).toBeCloseTo(t, 5);
      }),
    );
  });

  it('reaches a t-value that one linearisation from the uniform distribution cannot (fishtest asserts there)', () => {
    // Pentanomial, per-pair t = √2·(−300/347.4) ≈ −1.22: the first step's deviations are all one sign.
    const r: GameResults = [1000, 500, 200, 100, 50];
    const { values, probabilities } = empiricalDistribution(r);
    const p = mleWithTValue(values, probabilities, 0.5, -1.2213);
    const { mean, variance } = moments(values, p);
    expect((mean - 0.5) / Math.sqrt(variance)).toBeCloseTo(-1.2213, 8);
    expect(llrNormalized(0, -300, r)).toBeCloseTo(-llrNormalized(-300, 0, r), 8);
    expect(Number.isFinite(llrNormalized(0, -300, r))).toBe(true);
  });

  it('reaches a normalized hypothesis next to a pole, which a fixed bracket margin could not (it threw)', () => {
    // 984,030 losses and no other result: t = 2.87 needs a root within 1e-9 of the secular pole.
    const forward = llrNormalized(0, 1000, [984_030, 0, 0]);
    expect(Number.isFinite(forward)).toBe(true);
    expect(forward).toBeLessThan(0);
    expect(llrNormalized(1000, 0, [984_030, 0, 0])).toBeCloseTo(-forward, 3);
  });
});
