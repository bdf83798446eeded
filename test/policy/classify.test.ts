import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import {
  RECOMMENDED_ACTION,
  SEVERITIES,
  classify,
  recommendedAction,
  type EvaluationMetrics,
  type Severity,
  type ThresholdPolicy,
} from '../../src/policy/index.ts';

// The policy the service runs with by default, straight from the validated configuration.
const policy: ThresholdPolicy = parseConfig({}).detection;

const byElo = (drop: number): EvaluationMetrics => ({ baselineElo: 1500, currentElo: 1500 - drop });
const byWinRate = (drop: number): EvaluationMetrics => ({ baselineWinRate: 0.6, currentWinRate: 0.6 - drop });

describe('classify: Elo drop boundaries, each at the threshold and just under', () => {
  it.each<[number, Severity | null]>([
    [0, null],
    [19.9, null],
    [20, 'minor'],
    [34.9, 'minor'],
    [35, 'moderate'],
    [49.9, 'moderate'],
    [50, 'severe'],
    [74.9, 'severe'],
    [75, 'critical'],
    [400, 'critical'],
  ])('an Elo drop of %s is %s', (drop, severity) => {
    const result = classify(byElo(drop), policy);
    expect(result.severity).toBe(severity);
    expect(result.eloDrop).toBe(drop);
  });

  it('rounds the float subtraction so a drop lands on its boundary (1500 - 1450.1 is 49.9, not 49.90000000000009)', () => {
    expect(1500 - 1450.1).not.toBe(49.9);
    expect(classify({ baselineElo: 1500, currentElo: 1450.1 }, policy).eloDrop).toBe(49.9);
  });
});

describe('classify: win-rate drop boundaries', () => {
  it.each<[number, Severity | null]>([
    [0.024, null],
    [0.025, 'minor'],
    [0.049, 'minor'],
    [0.05, 'moderate'],
    [0.099, 'moderate'],
    [0.1, 'severe'],
    [0.149, 'severe'],
    [0.15, 'critical'],
  ])('a win-rate drop of %s is %s', (drop, severity) => {
    expect(classify(byWinRate(drop), policy).severity).toBe(severity);
  });

  it('win-rate MINOR is reachable (the seed had minor = moderate = 0.05, so it never fired)', () => {
    const result = classify({ baselineWinRate: 0.55, currentWinRate: 0.52 }, policy);
    expect(result.severity).toBe('minor');
    expect(result.winRateDrop).toBe(0.03);
  });

  it('0.60 - 0.45 is a 0.15 drop and CRITICAL (the seed computed 0.14999999999999997 and said SEVERE)', () => {
    expect(0.6 - 0.45).toBeLessThan(0.15);
    const result = classify({ baselineWinRate: 0.6, currentWinRate: 0.45 }, policy);
    expect(result.winRateDrop).toBe(0.15);
    expect(result.severity).toBe('critical');
    expect(result.reason).toBe('Win rate dropped by 15% (critical)');
  });
});

describe('classify: error rate', () => {
  it('0.049 is not a regression', () => {
    const result = classify({ errorRate: 0.049 }, policy);
    expect(result.severity).toBeNull();
    expect(result.errorRate).toBe(0.049);
  });

  it('exactly 0.05 is SEVERE and the reason names the error rate (the seed said "Unknown regression")', () => {
    const result = classify({ errorRate: 0.05 }, policy);
    expect(result.severity).toBe('severe');
    expect(result.reason).toBe('Error rate at 5% (severe)');
    expect(result.reason).not.toMatch(/unknown/i);
  });

  it('any error rate above the threshold is SEVERE, never more by itself', () => {
    expect(classify({ errorRate: 0.2 }, policy).severity).toBe('severe');
    expect(classify({ errorRate: 1 }, policy).severity).toBe('severe');
  });
});

describe('classify: improvements are not regressions', () => {
  it('an Elo gain gives a negative drop and no severity', () => {
    const result = classify({ baselineElo: 1500, currentElo: 1600 }, policy);
    expect(result.eloDrop).toBe(-100);
    expect(result.severity).toBeNull();
    expect(result.reason).toBe('No regression');
  });

  it('a win-rate gain gives a negative drop and no severity', () => {
    const result = classify({ baselineWinRate: 0.45, currentWinRate: 0.6 }, policy);
    expect(result.winRateDrop).toBe(-0.15);
    expect(result.severity).toBeNull();
  });

  it('a gain on one metric does not cancel a drop on another', () => {
    const result = classify(
      { baselineElo: 1500, currentElo: 1700, baselineWinRate: 0.6, currentWinRate: 0.5 },
      policy,
    );
    expect(result.severity).toBe('severe');
    expect(result.reason).toBe('Win rate dropped by 10% (severe)');
  });
});

describe('classify: the worst criterion wins', () => {
  it.each<[EvaluationMetrics, Severity]>([
    [{ baselineElo: 1500, currentElo: 1475, baselineWinRate: 0.6, currentWinRate: 0.48 }, 'severe'],
    [{ baselineElo: 1500, currentElo: 1420, baselineWinRate: 0.6, currentWinRate: 0.57 }, 'critical'],
    [{ baselineElo: 1500, currentElo: 1479, errorRate: 0.06 }, 'severe'],
    [{ baselineElo: 1500, currentElo: 1400, errorRate: 0.06 }, 'critical'],
    [{ baselineWinRate: 0.6, currentWinRate: 0.54, errorRate: 0.01 }, 'moderate'],
  ])('%j is %s', (metrics, severity) => {
    expect(classify(metrics, policy).severity).toBe(severity);
  });

  it('the reason names every criterion that fired, in a readable sentence', () => {
    const result = classify(
      { baselineElo: 1500, currentElo: 1460, baselineWinRate: 0.6, currentWinRate: 0.54, errorRate: 0.075 },
      policy,
    );
    expect(result).toEqual({
      severity: 'severe',
      eloDrop: 40,
      winRateDrop: 0.06,
      errorRate: 0.075,
      reason: 'Elo dropped by 40 (moderate); Win rate dropped by 6% (moderate); Error rate at 7.5% (severe)',
    });
  });

  it('the reason leaves out criteria that did not fire', () => {
    const result = classify(
      { baselineElo: 1500, currentElo: 1437.5, baselineWinRate: 0.6, currentWinRate: 0.59, errorRate: 0.01 },
      policy,
    );
    expect(result.severity).toBe('severe');
    expect(result.winRateDrop).toBe(0.01);
    expect(result.reason).toBe('Elo dropped by 62.5 (severe)');
  });
});

describe('classify: missing metrics skip their criterion', () => {
  it('no metrics at all: no regression, every drop null', () => {
    expect(classify({}, policy)).toEqual({
      severity: null,
      eloDrop: null,
      winRateDrop: null,
      errorRate: null,
      reason: 'No regression',
    });
  });

  it('a current Elo without a baseline is not a drop', () => {
    const result = classify({ currentElo: 1000, baselineWinRate: 0.6, currentWinRate: 0.5 }, policy);
    expect(result.eloDrop).toBeNull();
    expect(result.winRateDrop).toBe(0.1);
    expect(result.severity).toBe('severe');
  });

  it('a baseline win rate without a current one is not a drop', () => {
    const result = classify({ baselineElo: 1500, currentElo: 1470, baselineWinRate: 0.9 }, policy);
    expect(result.winRateDrop).toBeNull();
    expect(result.severity).toBe('minor');
    expect(result.reason).toBe('Elo dropped by 30 (minor)');
  });

  it('a win rate of 0 counts (the seed skipped falsy values)', () => {
    const result = classify({ baselineWinRate: 0.5, currentWinRate: 0 }, policy);
    expect(result.winRateDrop).toBe(0.5);
    expect(result.severity).toBe('critical');
  });

  it('an error rate of 0 is present and fine', () => {
    const result = classify({ errorRate: 0 }, policy);
    expect(result.errorRate).toBe(0);
    expect(result.severity).toBeNull();
  });
});

describe('classify: the policy is the one passed in', () => {
  it('custom ladders move the boundaries', () => {
    const strict: ThresholdPolicy = {
      ...policy,
      eloDrop: { minor: 5, moderate: 10, severe: 15, critical: 20 },
      errorRateSevere: 0.01,
    };
    expect(classify(byElo(12), strict).severity).toBe('moderate');
    expect(classify({ errorRate: 0.01 }, strict).severity).toBe('severe');
    expect(classify(byElo(12), policy).severity).toBeNull();
  });
});

describe('recommended actions', () => {
  it("keeps the seed's recommended_action texts per severity", () => {
    expect(Object.fromEntries(SEVERITIES.map((s) => [s, recommendedAction(s)]))).toEqual({
      minor: 'Monitor closely, may recover',
      moderate: 'Investigate causes, consider retraining',
      severe: 'Halt promotion, investigate immediately',
      critical: 'Rollback recommended, stop deployments',
    });
    expect(RECOMMENDED_ACTION.critical).toBe(recommendedAction('critical'));
  });
});
