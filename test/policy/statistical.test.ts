import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  assessStatistically,
  confidenceAtLook,
  decideStatistically,
  DEFAULT_STATISTICAL_POLICY,
  validateOutcomes,
  type SprtAccumulator,
  type StatisticalAssessment,
  type StatisticalPolicy,
  type WindowOutcomes,
} from '../../src/policy/statistical.ts';
import type { DecisionPolicy } from '../../src/policy/thresholds.ts';
import {
  eloFromScore,
  llrLogistic,
  normalQuantile,
  type GameResults,
  type Pentanomial,
} from '../../src/stats/index.ts';
import { FISHTEST_CASES } from '../stats/fishtest-vectors.ts';

const DECISIONS: DecisionPolicy = {
  escalateAt: 2,
  forceActionAt: 3,
  moderateRollbackEloDrop: 30,
  requireApprovalForSevere: false,
};

/** Splits cumulative counts into k windows that add up to them exactly. */
function split(results: readonly number[], k: number): number[][] {
  return Array.from({ length: k }, (_, j) =>
    results.map((n) => Math.floor(((j + 1) * n) / k) - Math.floor((j * n) / k)),
  );
}

function toWindow(counts: readonly number[]): WindowOutcomes {
  return counts.length === 5
    ? { pentanomial: counts as unknown as Pentanomial }
    : { losses: counts[0] as number, draws: counts[1] as number, wins: counts[2] as number };
}

function feed(windows: readonly WindowOutcomes[], policy: StatisticalPolicy): StatisticalAssessment[] {
  let accumulator: SprtAccumulator | null = null;
  return windows.map((window) => {
    const assessment = assessStatistically(window, accumulator, policy);
    accumulator = assessment.accumulator;
    return assessment;
  });
}

describe('policy/statistical: the SPRT on accumulated windows', () => {
  // Wide bounds (alpha = beta = 1e-30, ±69) keep the test running, so every window adds to one total.
  const patient: StatisticalPolicy = { ...DEFAULT_STATISTICAL_POLICY, alpha: 1e-30, beta: 1e-30 };
  const comparisons = FISHTEST_CASES.flatMap((c) =>
    c.llr
      .filter((h) => h.elo1 < h.elo0 && Math.abs(h.llr_logistic) < 40)
      .map((h) => [c.results.join(','), h.elo0, h.elo1, c, h.llr_logistic] as const),
  );

  it('has enough fishtest cases to compare against', () => {
    expect(comparisons.length).toBeGreaterThanOrEqual(30);
  });

  it.each(comparisons)(
    'windows summing to [%s] give fishtest LLR for elo0 %d, elo1 %d',
    (_, elo0, elo1, c, expected) => {
      const assessments = feed(split(c.results, 7).map(toWindow), { ...patient, elo0, elo1 });
      const last = assessments.at(-1) as StatisticalAssessment;
      expect(last.sprt.windows).toBe(7);
      expect(last.sprt.games).toBe(c.results.reduce((a, b) => a + b, 0) * (c.results.length === 5 ? 2 : 1));
      expect(Math.abs(last.sprt.llr - expected)).toBeLessThanOrEqual(1e-6);
      expect(last.elo.elo).toBeCloseTo(c.elo, 6);
      expect(last.accumulator?.results).toEqual([...c.results]);
    },
  );

  it('with the default policy, accumulates until the decision, then resets (fishtest case [237, 31, 132])', () => {
    const totals = [237, 31, 132];
    expect(llrLogistic(0, -30, totals as unknown as GameResults)).toBeGreaterThan(2.95); // decides before the end
    const windows = split(totals, 20);
    const assessments = feed(windows.map(toWindow), DEFAULT_STATISTICAL_POLICY);
    const decided = assessments.findIndex((a) => a.sprt.decision !== 'continue');
    expect(decided).toBeGreaterThan(0);
    let sum = [0, 0, 0];
    for (const [i, a] of assessments.slice(0, decided + 1).entries()) {
      sum = sum.map((n, j) => n + (windows[i]?.[j] as number));
      expect(a.sprt.windows).toBe(i + 1);
      expect(a.sprt.llr).toBeCloseTo(llrLogistic(0, -30, sum as unknown as GameResults), 12);
      expect(a.accumulator).toEqual(
        i < decided
          ? expect.objectContaining({ kind: 'trinomial', results: sum, windows: i + 1, test: 1, passes: 0 })
          : expect.objectContaining({
              kind: 'trinomial',
              results: [0, 0, 0],
              windows: 0,
              test: 2,
              passes: 0,
            }),
      );
    }
    expect(assessments[decided]?.sprt.decision).toBe('accept_h1');
    expect(assessments[decided + 1]?.sprt.windows).toBe(1);
    expect(assessments[decided + 1]?.sprt.test).toBe(2);
  });

  it('accepts H0 on a healthy version, resets, and the next window starts a new test', () => {
    const healthy: WindowOutcomes = { wins: 20, draws: 12, losses: 18 };
    const assessments = feed(
      Array.from({ length: 30 }, () => healthy),
      DEFAULT_STATISTICAL_POLICY,
    );
    const first = assessments.findIndex((a) => a.sprt.decision === 'accept_h0');
    expect(first).toBeGreaterThan(0);
    const accepted = assessments[first] as StatisticalAssessment;
    expect(accepted.sprt.llr).toBeLessThanOrEqual(accepted.sprt.lower);
    // The version passed test 1: the next window starts test 2, which gets a smaller share of alpha.
    expect(accepted.accumulator).toEqual(
      expect.objectContaining({ windows: 0, results: [0, 0, 0], test: 2, passes: 1, llr: 0 }),
    );
    expect(accepted.severity).toBeNull();
    expect(accepted.reason).toMatch(
      /^SPRT test 1 \(alpha 4\.16%\) accepted H0 \(LLR -\d+\.\d\d <= -2\.95\): no sign of a 30-Elo regression, the version passes and test 2 starts/,
    );
    expect(decideStatistically(accepted, DECISIONS)).toBe('watch');
    const next = assessments[first + 1] as StatisticalAssessment;
    expect(next.sprt.windows).toBe(1);
    expect(next.sprt.games).toBe(50);
    expect(next.sprt.test).toBe(2);
    expect(next.sprt.alpha).toBeCloseTo(0.05 / (1.2020569031595942 * 8), 15);
    expect(next.sprt.upper).toBeCloseTo(Math.log(0.95 / next.sprt.alpha), 12);
  });

  it('accepts H1 on a clear regression: a rollback decision, through the approval policy', () => {
    const bad: WindowOutcomes = { wins: 12, draws: 10, losses: 28 };
    const assessments = feed([bad, bad, bad, bad], DEFAULT_STATISTICAL_POLICY);
    const first = assessments.findIndex((a) => a.sprt.decision === 'accept_h1');
    expect(first).toBeGreaterThanOrEqual(0);
    const accepted = assessments[first] as StatisticalAssessment;
    expect(accepted.sprt.llr).toBeGreaterThanOrEqual(accepted.sprt.upper);
    expect(accepted.accumulator).toEqual(expect.objectContaining({ windows: 0, test: 2, passes: 0 }));
    expect(accepted.reason).toMatch(
      /^SPRT test 1 \(alpha 4\.16%\) accepted H1 \(LLR \d+\.\d\d >= 3\.13\): a 30-Elo regression is likely; Elo -\d+\.\d \(95% interval -\d+\.\d to [-+]\d+\.\d\) over \d+ games/,
    );
    expect(decideStatistically(accepted, DECISIONS)).toBe('rollback');
    const approval = { ...DECISIONS, requireApprovalForSevere: true };
    expect(decideStatistically({ ...accepted, severity: 'severe' }, approval)).toBe('await_approval');
    expect(decideStatistically({ ...accepted, severity: null }, approval)).toBe('await_approval');
    expect(decideStatistically({ ...accepted, severity: 'critical' }, approval)).toBe('rollback');
  });

  // Issue 10 changed this: CRITICAL rolls back on its own (it used to wait for the SPRT); milder never.
  it('never rolls back on a severity below CRITICAL alone while the SPRT continues; CRITICAL rolls back', () => {
    const continuing = assessStatistically(
      { wins: 20, draws: 10, losses: 20 },
      null,
      DEFAULT_STATISTICAL_POLICY,
    );
    expect(continuing.sprt.decision).toBe('continue');
    for (const severity of ['minor', 'moderate', 'severe'] as const) {
      expect(decideStatistically({ ...continuing, severity, eloDropLower: 500 }, DECISIONS)).toBe('watch');
    }
    const approval = { ...DECISIONS, requireApprovalForSevere: true };
    expect(decideStatistically({ ...continuing, severity: 'critical' }, approval)).toBe('rollback');
  });

  it('keeps a JSON-safe accumulator: a persisted and restored one continues the same test', () => {
    const windows: WindowOutcomes[] = [
      { wins: 22, draws: 9, losses: 19 },
      { wins: 18, draws: 12, losses: 20 },
      { wins: 20, draws: 10, losses: 20 },
    ];
    const direct = feed(windows, DEFAULT_STATISTICAL_POLICY);
    let accumulator: SprtAccumulator | null = null;
    let restored: StatisticalAssessment | null = null;
    for (const window of windows) {
      restored = assessStatistically(window, accumulator, DEFAULT_STATISTICAL_POLICY);
      accumulator = JSON.parse(JSON.stringify(restored.accumulator)) as SprtAccumulator | null;
    }
    expect(restored).toEqual(direct.at(-1));
    expect(accumulator).toEqual(
      expect.objectContaining({ kind: 'trinomial', results: [59, 31, 60], windows: 3, test: 1 }),
    );
  });

  it('counts a pentanomial pair as two games', () => {
    const a = assessStatistically({ pentanomial: [3, 5, 10, 5, 2] }, null, DEFAULT_STATISTICAL_POLICY);
    expect(a.sprt.games).toBe(50);
    expect(a.accumulator).toEqual(
      expect.objectContaining({ kind: 'pentanomial', results: [3, 5, 10, 5, 2], windows: 1 }),
    );
  });

  it('restarts, and says so, when the outcome format changes', () => {
    const first = assessStatistically({ pentanomial: [3, 5, 10, 5, 2] }, null, DEFAULT_STATISTICAL_POLICY);
    const switched = assessStatistically(
      { wins: 20, draws: 10, losses: 20 },
      first.accumulator,
      DEFAULT_STATISTICAL_POLICY,
    );
    expect(switched.sprt.windows).toBe(1);
    expect(switched.sprt.games).toBe(50);
    expect(switched.accumulator).toEqual(
      expect.objectContaining({ kind: 'trinomial', results: [20, 10, 20], windows: 1, test: 1 }),
    );
    expect(switched.reason).toMatch(
      /^Outcome format changed from pentanomial to trinomial, so the SPRT restarted\. /,
    );
  });
});

describe('policy/statistical: severity from the lower confidence bound of the drop', () => {
  it('spends the confidence over the looks: 1 − (1 − c)/(k(k+1)), adding up to 1 − c', () => {
    expect(confidenceAtLook(0.95, 1)).toBeCloseTo(0.975, 15);
    expect(confidenceAtLook(0.95, 4)).toBeCloseTo(1 - 0.05 / 20, 15);
    let spent = 0;
    for (let k = 1; k <= 100_000; k += 1) spent += 1 - confidenceAtLook(0.95, k);
    expect(spent).toBeCloseTo(0.05 * (1 - 1 / 100_001), 9);
  });

  it('at the first look is the upper end of the two-sided interval at the same confidence', () => {
    const a = assessStatistically({ wins: 10, draws: 10, losses: 30 }, null, DEFAULT_STATISTICAL_POLICY);
    expect(a.eloDropLower).toBeCloseTo(-a.elo.upper, 8);
  });

  it('agrees with the normal approximation −D(μ̂ + z·σ̂/√n) on many games, with z for the look', () => {
    const windows = split([1400, 600, 1000], 6).map(toWindow);
    const last = feed(windows, { ...DEFAULT_STATISTICAL_POLICY, alpha: 1e-30, beta: 1e-30 }).at(
      -1,
    ) as StatisticalAssessment;
    const n = 3000;
    const mean = (600 * 0.5 + 1000) / n;
    const variance = (1400 * mean ** 2 + 600 * (0.5 - mean) ** 2 + 1000 * (1 - mean) ** 2) / n;
    const z = normalQuantile(confidenceAtLook(0.95, 6));
    // The score interval takes the spread at the bound rather than at the estimate: within 0.5 Elo here.
    expect(last.eloDropLower).toBeCloseTo(-eloFromScore(mean + z * Math.sqrt(variance / n)), 0);
  });

  it('is graded with "at least" on the ladder, exactly at each boundary', () => {
    const window: WindowOutcomes = { wins: 8, draws: 10, losses: 32 };
    const { eloDropLower } = assessStatistically(window, null, DEFAULT_STATISTICAL_POLICY);
    expect(eloDropLower).toBeGreaterThan(50);
    const ladders = {
      atModerate: {
        minor: 1,
        moderate: eloDropLower,
        severe: eloDropLower + 10,
        critical: eloDropLower + 20,
      },
      justBelowModerate: {
        minor: 1,
        moderate: eloDropLower + 1e-6,
        severe: eloDropLower + 10,
        critical: eloDropLower + 20,
      },
      atCritical: { minor: 1, moderate: 2, severe: 3, critical: eloDropLower },
      belowMinor: { minor: eloDropLower + 1e-6, moderate: 500, severe: 600, critical: 700 },
    };
    const grade = (eloDrop: StatisticalPolicy['eloDrop']) =>
      assessStatistically(window, null, { ...DEFAULT_STATISTICAL_POLICY, eloDrop }).severity;
    expect(grade(ladders.atModerate)).toBe('moderate');
    expect(grade(ladders.justBelowModerate)).toBe('minor');
    expect(grade(ladders.atCritical)).toBe('critical');
    expect(grade(ladders.belowMinor)).toBeNull();
  });

  it('with the default ladder: a clear 50-game collapse is established as at least MODERATE, a 50-50 window as nothing', () => {
    const collapse = assessStatistically({ wins: 5, draws: 5, losses: 40 }, null, DEFAULT_STATISTICAL_POLICY);
    expect(collapse.eloDropLower).toBeGreaterThanOrEqual(35);
    expect(['moderate', 'severe', 'critical']).toContain(collapse.severity);
    expect(collapse.reason).toMatch(
      /a drop of at least \d+\.\d Elo established at 95% \((moderate|severe|critical)\)/,
    );
    const even = assessStatistically({ wins: 20, draws: 10, losses: 20 }, null, DEFAULT_STATISTICAL_POLICY);
    expect(even.severity).toBeNull();
    expect(even.eloDropLower).toBeLessThan(0);
    expect(even.reason).toMatch(/no drop of 20 Elo or more established at 95%$/);
  });

  it('is lower (more cautious) at a higher confidence', () => {
    fc.assert(
      fc.property(
        fc
          .record({ wins: fc.nat(60), draws: fc.nat(60), losses: fc.nat(60) })
          .filter((w) => w.wins + w.draws + w.losses > 0),
        (window) => {
          const at90 = assessStatistically(window, null, { ...DEFAULT_STATISTICAL_POLICY, confidence: 0.9 });
          const at99 = assessStatistically(window, null, { ...DEFAULT_STATISTICAL_POLICY, confidence: 0.99 });
          expect(at99.eloDropLower).toBeLessThanOrEqual(at90.eloDropLower);
        },
      ),
    );
  });
});

describe('policy/statistical: input validation', () => {
  it('accepts consistent outcomes', () => {
    expect(validateOutcomes({ wins: 20, draws: 10, losses: 20 }, 50)).toEqual([]);
    expect(validateOutcomes({ pentanomial: [1, 2, 3, 4, 5] }, 30)).toEqual([]);
    expect(validateOutcomes({ wins: 1, draws: 0, losses: 0 })).toEqual([]);
  });

  it.each([
    [{ wins: -1, draws: 10, losses: 20 }, undefined, ['wins: expected a non-negative integer, received -1']],
    [
      { wins: 1.5, draws: Number.NaN, losses: 20 },
      undefined,
      [
        'wins: expected a non-negative integer, received 1.5',
        'draws: expected a non-negative integer, received NaN',
      ],
    ],
    [{ wins: 1, losses: 2 }, undefined, ['draws: expected a non-negative integer, received nothing']],
    [
      { wins: 0, draws: 0, losses: 0 },
      undefined,
      ['wins + draws + losses: expected at least one game, received 0'],
    ],
    [
      { wins: 20, draws: 10, losses: 18 },
      50,
      ['games_played: expected wins + draws + losses = 48, received 50'],
    ],
    [{ pentanomial: [1, 2, 3, 4, 5] }, 31, ['games_played: expected 2 × pairs = 30, received 31']],
    [
      { pentanomial: [1, 2, 3, 4] },
      undefined,
      ['pentanomial: expected 5 pair counts [LL, LD+DL, LW+DD+WL, DW+WD, WW], received an array of 4'],
    ],
    [
      { pentanomial: [1, -2, 3, 4, 5] },
      undefined,
      ['pentanomial[1]: expected a non-negative integer, received -2'],
    ],
    [
      { pentanomial: [0, 0, 0, 0, 0] },
      undefined,
      ['pentanomial: expected at least one game pair, received all-zero counts'],
    ],
    [
      { pentanomial: [1, 1, 1, 1, 1], wins: 3 },
      undefined,
      ['pentanomial: expected either wins/draws/losses or pentanomial, received both'],
    ],
    [null, undefined, ['outcomes: expected {wins, draws, losses} or {pentanomial}, received null']],
    [
      [1, 2, 3],
      undefined,
      ['outcomes: expected {wins, draws, losses} or {pentanomial}, received an array of 3'],
    ],
  ])('validateOutcomes(%j, %j) reports each problem', (window, gamesPlayed, problems) => {
    expect(validateOutcomes(window, gamesPlayed)).toEqual(problems);
  });

  it('assessStatistically rejects bad outcomes with a RangeError naming the problem', () => {
    expect(() =>
      assessStatistically({ wins: -1, draws: 0, losses: 3 }, null, DEFAULT_STATISTICAL_POLICY),
    ).toThrow(new RangeError('window outcomes: wins: expected a non-negative integer, received -1'));
    expect(() =>
      assessStatistically({ wins: 0, draws: 0, losses: 0 }, null, DEFAULT_STATISTICAL_POLICY),
    ).toThrow(/expected at least one game/);
  });

  it('rejects a policy whose H1 is not a regression, or whose error rates are impossible', () => {
    const window: WindowOutcomes = { wins: 20, draws: 10, losses: 20 };
    expect(() => assessStatistically(window, null, { ...DEFAULT_STATISTICAL_POLICY, elo1: 5 })).toThrow(
      /elo1: expected a finite number below elo0 = 0 \(H1 is a regression\), received 5/,
    );
    expect(() => assessStatistically(window, null, { ...DEFAULT_STATISTICAL_POLICY, confidence: 1 })).toThrow(
      /confidence: expected a number strictly between 0 and 1, received 1/,
    );
    expect(() => assessStatistically(window, null, { ...DEFAULT_STATISTICAL_POLICY, alpha: 0 })).toThrow(
      /alpha: expected/,
    );
  });

  it('rejects a corrupt accumulator instead of guessing', () => {
    const corrupt = { kind: 'trinomial', results: [1, 2], windows: 1 } as unknown as SprtAccumulator;
    expect(() =>
      assessStatistically({ wins: 1, draws: 1, losses: 1 }, corrupt, DEFAULT_STATISTICAL_POLICY),
    ).toThrow(/SPRT accumulator: expected .* received \{"kind":"trinomial","results":\[1,2\],"windows":1\}/);
  });
});
