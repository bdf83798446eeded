/**
 * Issue 8, finding 2: one legal evaluation (5,000,000 wins and nothing else) made the LLR's root finder
 * throw inside an XState guard and killed the process. Every statistic must be finite and never throw for
 * any counts the evaluation schema accepts (up to 1e9 games), including all-wins, all-losses, all-draws
 * and zero games in any category.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  eloEstimate,
  eloScoreInterval,
  eloUpperBound,
  llrLogistic,
  type GameResults,
} from '../../src/stats/index.ts';
import {
  advanceTest,
  assessStatistically,
  DEFAULT_STATISTICAL_POLICY,
} from '../../src/policy/statistical.ts';

const LIMIT = 1_000_000_000;

/** Counts that favour the extremes: 0, 1, a few, and values up to the schema's limit. */
const count = fc.oneof(
  fc.constant(0),
  fc.constant(1),
  fc.integer({ min: 0, max: 60 }),
  fc.integer({ min: 0, max: LIMIT }),
  fc.constantFrom(LIMIT, LIMIT - 1, 5_000_000, 4_000_000, 25_000_000),
);
const trinomial = fc
  .tuple(count, count, count)
  .filter((r) => r.some((n) => n > 0) && r[0] + r[1] + r[2] <= LIMIT);
// A pentanomial count is a pair: two games, so the pairs add up to at most half the limit.
const pentanomial = fc
  .tuple(count, count, count, count, count)
  .map((r) => r.map((n) => Math.floor(n / 2)))
  .filter((r) => r.some((n) => n > 0) && r.reduce((a, b) => a + b, 0) <= LIMIT / 2);
const results = fc.oneof(trinomial, pentanomial) as fc.Arbitrary<GameResults>;

function allFinite(values: readonly number[]): boolean {
  return values.every((v) => Number.isFinite(v));
}

describe('stats: finite for every count the schema accepts', () => {
  it.each<[string, GameResults]>([
    ['5,000,000 wins', [0, 0, 5_000_000]],
    ['4,000,000 losses', [4_000_000, 0, 0]],
    ['25,000,000 draws', [0, 25_000_000, 0]],
    ['1e9 wins', [0, 0, LIMIT]],
    ['1e9 losses', [LIMIT, 0, 0]],
    ['1e9 draws', [0, LIMIT, 0]],
    ['1e9 split, one loss', [1, LIMIT / 2, LIMIT / 2 - 1]],
    ['5e8 pairs WW', [0, 0, 0, 0, LIMIT / 2]],
    ['5e8 pairs LL', [LIMIT / 2, 0, 0, 0, 0]],
    ['5e8 pairs, all even', [0, 0, LIMIT / 2, 0, 0]],
  ])('%s: LLR, Elo, bounds and the detector are finite', (_, r) => {
    const llr = llrLogistic(0, -30, r);
    const estimate = eloEstimate(r);
    const interval = eloScoreInterval(r, 0.95);
    expect(allFinite([llr, estimate.elo, estimate.elo95, estimate.los, interval.lower, interval.upper])).toBe(
      true,
    );
    expect(interval.lower).toBeLessThanOrEqual(interval.upper);
    const window = r.length === 5 ? { pentanomial: r } : { losses: r[0], draws: r[1], wins: r[2] };
    const a = assessStatistically(window, null, DEFAULT_STATISTICAL_POLICY);
    expect(allFinite([a.sprt.llr, a.eloDropLower, a.elo.elo, a.elo.lower, a.elo.upper])).toBe(true);
  });

  it('all wins decide for H0, all losses for H1, all draws (a 50% score) for H0', () => {
    expect(llrLogistic(0, -30, [0, 0, 5_000_000])).toBeLessThan(-1e5);
    expect(llrLogistic(0, -30, [4_000_000, 0, 0])).toBeGreaterThan(1e5);
    expect(llrLogistic(0, -30, [0, 25_000_000, 0])).toBeLessThan(-1e5);
  });

  it('property: any trinomial or pentanomial counts up to 1e9 games give finite statistics, never a throw', () => {
    fc.assert(
      fc.property(results, fc.double({ min: 0.5, max: 0.999999, noNaN: true }), (r, confidence) => {
        const llr = llrLogistic(0, -30, r);
        const estimate = eloEstimate(r, confidence);
        const upper = eloUpperBound(r, confidence);
        const interval = eloScoreInterval(r, confidence);
        expect(allFinite([llr, estimate.elo, estimate.elo95, upper, interval.lower, interval.upper])).toBe(
          true,
        );
        // Everything within the ±1200 clamp of the logistic map.
        for (const v of [estimate.elo, upper, interval.lower, interval.upper]) {
          expect(Math.abs(v)).toBeLessThanOrEqual(1200);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('property: a running test fed extreme windows one after another stays finite', () => {
    fc.assert(
      fc.property(fc.array(trinomial, { minLength: 1, maxLength: 6 }), (windows) => {
        let accumulator = null;
        for (const [losses, draws, wins] of windows) {
          // The schema bounds one window, not the sum: the test's counts may pass 1e9 and must stay finite.
          const step = advanceTest({ wins, draws, losses }, accumulator, DEFAULT_STATISTICAL_POLICY);
          expect(allFinite([step.llr, step.lower, step.upper, step.eloDropLower])).toBe(true);
          accumulator = JSON.parse(JSON.stringify(step.accumulator));
        }
      }),
      { numRuns: 100 },
    );
  });
});
