import { describe, expect, it } from 'vitest';
import {
  eloEstimate,
  llrLogistic,
  llrNormalized,
  sprtBounds,
  sprtDecision,
  type GameResults,
} from '../../src/stats/index.ts';

const bad = (value: unknown): GameResults => value as GameResults;

describe('stats: invalid results are RangeErrors that say what was expected and received', () => {
  it.each([
    [[1, 2], /expected 3 counts \[losses, draws, wins\] or 5 pentanomial counts .*received an array of 2/],
    [[1, 2, 3, 4], /received an array of 4/],
    [[1, -2, 3], /results\[1\] \(draws\): expected a non-negative integer count, received -2/],
    [[1, 2.5, 3], /results\[1\] \(draws\): expected a non-negative integer count, received 2.5/],
    [[Number.NaN, 1, 1], /results\[0\] \(losses\): expected a non-negative integer count, received NaN/],
    [[0, 0, 0], /expected at least one game, received all-zero counts \[0, 0, 0\]/],
    [
      [1, 1, 1, 1, Number.POSITIVE_INFINITY],
      /results\[4\] \(WW\): expected a non-negative integer count, received Infinity/,
    ],
    ['1,2,3', /received "1,2,3"/],
  ])('eloEstimate(%j) throws', (input, message) => {
    expect(() => eloEstimate(bad(input))).toThrow(RangeError);
    expect(() => eloEstimate(bad(input))).toThrow(message);
  });

  it('the LLRs validate results and hypotheses the same way', () => {
    expect(() => llrLogistic(0, -30, bad([0, 0, 0]))).toThrow(/at least one game/);
    expect(() => llrNormalized(0, -5, bad([1, -1, 1]))).toThrow(/non-negative integer/);
    expect(() => llrLogistic(Number.NaN, -30, [1, 2, 3])).toThrow(
      /elo0: expected a finite number, received NaN/,
    );
    expect(() => llrNormalized(0, Number.POSITIVE_INFINITY, [1, 2, 3])).toThrow(
      /nelo1: expected a finite number/,
    );
  });

  it('rejects a confidence outside (0, 1)', () => {
    expect(() => eloEstimate([1, 2, 3], 1)).toThrow(
      /confidence: expected a number strictly between 0 and 1, received 1/,
    );
    expect(() => eloEstimate([1, 2, 3], 0)).toThrow(RangeError);
  });
});

describe('stats: SPRT bounds and decision', () => {
  it("uses Wald's bounds ln(β/(1−α)) and ln((1−β)/α)", () => {
    const bounds = sprtBounds(0.05, 0.1);
    expect(bounds.lower).toBeCloseTo(Math.log(0.1 / 0.95), 15);
    expect(bounds.upper).toBeCloseTo(Math.log(0.9 / 0.05), 15);
  });

  it('rejects alpha or beta outside (0, 1), and alpha + beta >= 1', () => {
    expect(() => sprtBounds(0, 0.05)).toThrow(
      /alpha: expected a probability strictly between 0 and 1, received 0/,
    );
    expect(() => sprtBounds(0.05, 1.2)).toThrow(
      /beta: expected a probability strictly between 0 and 1, received 1.2/,
    );
    expect(() => sprtBounds(0.6, 0.5)).toThrow(/alpha \+ beta: expected less than 1, received 0.6 \+ 0.5/);
  });

  it('decides at the bounds and continues strictly between them', () => {
    const bounds = sprtBounds(0.05, 0.05);
    expect(sprtDecision(bounds.upper, bounds)).toBe('accept_h1');
    expect(sprtDecision(bounds.upper - 1e-9, bounds)).toBe('continue');
    expect(sprtDecision(bounds.lower, bounds)).toBe('accept_h0');
    expect(sprtDecision(bounds.lower + 1e-9, bounds)).toBe('continue');
    expect(() => sprtDecision(Number.NaN, bounds)).toThrow(/llr: expected a number, received NaN/);
  });
});
