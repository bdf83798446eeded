import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { eloEstimate, llrLogistic, llrNormalized, type GameResults } from '../../src/stats/index.ts';

const count = fc.integer({ min: 0, max: 400 });
const trinomial = fc.tuple(count, count, count).filter((r) => r[0] + r[1] + r[2] > 0);
const pentanomial = fc.tuple(count, count, count, count, count).filter((r) => r.some((n) => n > 0));
const results: fc.Arbitrary<GameResults> = fc.oneof(trinomial, pentanomial);
const elo = fc.double({ min: -300, max: 300, noNaN: true });

describe('stats: properties of the Elo estimate', () => {
  it('is monotone in the score: turning a loss into a draw, or a draw into a win, never lowers it', () => {
    fc.assert(
      fc.property(trinomial, fc.integer({ min: 0, max: 1 }), ([losses, draws, wins], step) => {
        // Move one game up one outcome, keeping the number of games.
        const from = step === 0 ? losses : draws;
        fc.pre(from > 0);
        const better: GameResults =
          step === 0 ? [losses - 1, draws + 1, wins] : [losses, draws - 1, wins + 1];
        expect(eloEstimate(better).elo).toBeGreaterThanOrEqual(eloEstimate([losses, draws, wins]).elo);
      }),
    );
  });

  it('narrows as the same proportions are observed over more games', () => {
    fc.assert(
      fc.property(results, fc.integer({ min: 2, max: 50 }), (r, factor) => {
        // Away from the ±1200 clamp, where both widths would be flattened.
        const small = eloEstimate(r);
        fc.pre(small.upper < 1000 && small.lower > -1000);
        const scaled = r.map((n) => n * factor) as unknown as GameResults;
        expect(eloEstimate(scaled).elo95).toBeLessThan(small.elo95);
      }),
    );
  });

  it('contains the point estimate, and a higher confidence gives a wider interval', () => {
    fc.assert(
      fc.property(results, (r) => {
        const e90 = eloEstimate(r, 0.9);
        const e99 = eloEstimate(r, 0.99);
        expect(e90.lower).toBeLessThanOrEqual(e90.elo);
        expect(e90.upper).toBeGreaterThanOrEqual(e90.elo);
        expect(e99.elo95).toBeGreaterThanOrEqual(e90.elo95);
      }),
    );
  });
});

describe('stats: properties of the LLR', () => {
  it('changes sign when elo0 and elo1 are swapped (logistic and normalized)', () => {
    fc.assert(
      fc.property(results, elo, elo, (r, elo0, elo1) => {
        const forward = llrLogistic(elo0, elo1, r);
        expect(llrLogistic(elo1, elo0, r)).toBeCloseTo(-forward, 6);
        const normalized = llrNormalized(elo0 / 4, elo1 / 4, r);
        expect(llrNormalized(elo1 / 4, elo0 / 4, r)).toBeCloseTo(-normalized, 6);
      }),
    );
  });

  it('favours the hypothesis nearer the observed Elo', () => {
    fc.assert(
      fc.property(trinomial, fc.double({ min: 5, max: 100, noNaN: true }), (r, gap) => {
        const observed = eloEstimate(r).elo;
        fc.pre(Math.abs(observed) < 600);
        // H1 sits on the observed Elo, H0 `gap` below it: the data must prefer H1.
        expect(llrLogistic(observed - gap, observed, r)).toBeGreaterThan(0);
      }),
    );
  });

  it('is zero when both hypotheses are the same', () => {
    fc.assert(
      fc.property(results, elo, (r, e) => {
        expect(llrLogistic(e, e, r)).toBe(0);
      }),
    );
  });
});
