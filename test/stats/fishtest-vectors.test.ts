import { describe, expect, it } from 'vitest';
import {
  eloEstimate,
  llrLogistic,
  llrNormalized,
  sprtBounds,
  type GameResults,
} from '../../src/stats/index.ts';
import { FISHTEST_BOUNDS, FISHTEST_CASES } from './fishtest-vectors.ts';

const TOLERANCE = 1e-6;

function expectClose(actual: number, expected: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs fishtest ${expected}`).toBeLessThanOrEqual(
    TOLERANCE,
  );
}

const cases = FISHTEST_CASES.map((c) => [c.results.join(','), c] as const);

describe('stats: fishtest reference vectors', () => {
  it('covers trinomial and pentanomial results, including zero counts', () => {
    expect(FISHTEST_CASES.filter((c) => c.results.length === 3).length).toBeGreaterThanOrEqual(10);
    expect(FISHTEST_CASES.filter((c) => c.results.length === 5).length).toBeGreaterThanOrEqual(5);
    expect(FISHTEST_CASES.some((c) => c.results.includes(0))).toBe(true);
  });

  it.each(cases)('elo, elo95 and los of [%s] match to 1e-6', (_, c) => {
    const estimate = eloEstimate(c.results as GameResults);
    expectClose(estimate.elo, c.elo, 'elo');
    expectClose(estimate.elo95, c.elo95, 'elo95');
    expectClose(estimate.los, c.los, 'los');
    expect(estimate.confidence).toBe(0.95);
  });

  it.each(cases)(
    'llr_logistic and llr_normalized of [%s] match to 1e-6 for every hypothesis pair',
    (_, c) => {
      for (const { elo0, elo1, llr_logistic, llr_normalized } of c.llr) {
        expectClose(
          llrLogistic(elo0, elo1, c.results as GameResults),
          llr_logistic,
          `logistic ${elo0}/${elo1}`,
        );
        expectClose(
          llrNormalized(elo0, elo1, c.results as GameResults),
          llr_normalized,
          `normalized ${elo0}/${elo1}`,
        );
      }
    },
  );

  it('has the same Wald bounds for alpha = beta = 0.05', () => {
    const bounds = sprtBounds(FISHTEST_BOUNDS.alpha, FISHTEST_BOUNDS.beta);
    expectClose(bounds.lower, FISHTEST_BOUNDS.lower, 'lower bound');
    expectClose(bounds.upper, FISHTEST_BOUNDS.upper, 'upper bound');
  });
});
