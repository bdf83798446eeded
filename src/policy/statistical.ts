import { decide, type Decision } from './decide.ts';
import { SEVERITIES, type Severity } from './severity.ts';
import { roundDrop, type DecisionPolicy, type Ladder } from './thresholds.ts';
import {
  eloEstimate,
  eloScoreInterval,
  eloUpperBound,
  gamesOf,
  llrLogistic,
  sprtBounds,
  sprtDecision,
  type EloEstimate,
  type GameResults,
  type Pentanomial,
  type SprtDecision,
} from '../stats/index.ts';

/**
 * The statistical detector. Each evaluation window (games of the production version against its baseline)
 * is added to a running total, and a sequential probability ratio test on that total decides between
 * "no regression" and "a regression of |elo1 − elo0| Elo", however many windows it takes. An accept_h0
 * passes the version and starts the next test; the tests of one version share one false-rollback budget
 * α (alpha spending: the j-th test gets α/(ζ(3)·j³)), so a healthy version is rolled back with probability
 * at most about α over its whole life, not α per test. The severity grades the drop we are confident of
 * (a score-type bound); CRITICAL rolls back on its own. Pure: the state is passed in and returned.
 */

export interface StatisticalPolicy {
  /** Simultaneous confidence of the severity's lower bound over the looks of one SPRT run. */
  readonly confidence: number;
  /** H0, in logistic Elo of the current version against its baseline (0: no regression). */
  readonly elo0: number;
  /** H1 (-30: a 30-Elo regression); must be below elo0. */
  readonly elo1: number;
  /**
   * P(accept H1 | H0) over a version's life with `alphaSpending: life` (the tests share it), or per test
   * with `per_test` (every test spends it again: the behaviour before alpha spending, kept for comparison).
   */
  readonly alpha: number;
  /** P(accept H0 | H1): the missed-regression rate of one test. */
  readonly beta: number;
  readonly alphaSpending: 'life' | 'per_test';
  /** The same severity ladder as threshold mode, applied to the lower bound of the drop. */
  readonly eloDrop: Readonly<Ladder>;
}

export const DEFAULT_STATISTICAL_POLICY: StatisticalPolicy = Object.freeze({
  confidence: 0.95,
  elo0: 0,
  elo1: -30,
  alpha: 0.05,
  beta: 0.05,
  alphaSpending: 'life',
  eloDrop: Object.freeze({ minor: 20, moderate: 35, severe: 50, critical: 75 }),
});

/**
 * The running test of one production version. JSON-safe, persisted in the model actor's context. Right
 * after a decision it is a fresh test with no window yet (windows 0, all counts 0).
 */
export interface SprtAccumulator {
  readonly kind: 'trinomial' | 'pentanomial';
  /** [losses, draws, wins] or the five pentanomial pair counts, since the running test started. */
  readonly results: readonly number[];
  readonly windows: number;
  /** The running test's number for this version, from 1; each test spends its share of α. */
  readonly test: number;
  /** Tests of this version that ended in accept_h0: the version passed them. */
  readonly passes: number;
  /** When the last accept_h0 came (epoch ms), or null. */
  readonly lastPassedAt: number | null;
  /** The running test's LLR and Wald bounds (at its α), for status. */
  readonly llr: number;
  readonly lower: number;
  readonly upper: number;
  /** The running test's α, and the α the version's completed tests spent before it. */
  readonly alpha: number;
  readonly alphaSpent: number;
}

/** An accumulator as persisted: a state written before alpha spending has only kind, results, windows. */
export type StoredAccumulator = Pick<SprtAccumulator, 'kind' | 'results' | 'windows'> &
  Partial<Omit<SprtAccumulator, 'kind' | 'results' | 'windows'>>;

/** One evaluation's games against the baseline, as single games or as colour-swapped pairs. */
export type WindowOutcomes =
  | { readonly wins: number; readonly draws: number; readonly losses: number }
  | { readonly pentanomial: Pentanomial };

/** What one window does to the test: the decision and the severity, without the report (cheap). */
export interface TestStep {
  readonly severity: Severity | null;
  /** The drop (baseline − current, Elo) we are `confidence` sure of at this look (negative: none). */
  readonly eloDropLower: number;
  readonly llr: number;
  readonly lower: number;
  readonly upper: number;
  /** α of the test this window belonged to. */
  readonly alpha: number;
  readonly decision: SprtDecision;
  readonly games: number;
  readonly windows: number;
  readonly test: number;
  readonly kind: SprtAccumulator['kind'];
  /** The counts of the test this window belonged to (cumulative). */
  readonly results: readonly number[];
  /** The format changed, so this window started the test over. */
  readonly restarted: boolean;
  readonly previousKind: SprtAccumulator['kind'] | null;
  /** The state to keep: after a decision, a fresh test with the next number. */
  readonly accumulator: SprtAccumulator;
}

export interface StatisticalAssessment {
  /** From the lower confidence bound of the cumulative drop; null when not even MINOR is established. */
  readonly severity: Severity | null;
  /** The drop (baseline − current, Elo) we are `confidence` sure of, simultaneously over the run's looks. */
  readonly eloDropLower: number;
  /** Current against baseline over the SPRT run (negative: worse), with a score-type interval. */
  readonly elo: EloEstimate;
  readonly sprt: {
    readonly llr: number;
    readonly lower: number;
    readonly upper: number;
    readonly elo0: number;
    readonly elo1: number;
    readonly decision: SprtDecision;
    readonly games: number;
    readonly windows: number;
    readonly kind: SprtAccumulator['kind'];
    readonly test: number;
    readonly alpha: number;
  };
  /** The state to keep: after a decision, a fresh test with the next number. */
  readonly accumulator: SprtAccumulator;
  readonly reason: string;
}

const TRINOMIAL_FIELDS = ['wins', 'draws', 'losses'] as const;

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return `"${value}"`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/**
 * Every problem with one window's outcomes, as "field: expected …, received …"; empty when valid.
 * With `gamesPlayed`, the counts must add up to it (a pentanomial pair is two games).
 */
export function validateOutcomes(window: unknown, gamesPlayed?: number): string[] {
  if (typeof window !== 'object' || window === null || Array.isArray(window)) {
    return [`outcomes: expected {wins, draws, losses} or {pentanomial}, received ${describe(window)}`];
  }
  const record = window as Record<string, unknown>;
  const hasTrinomial = TRINOMIAL_FIELDS.some((field) => field in record);
  if ('pentanomial' in record && hasTrinomial) {
    return ['pentanomial: expected either wins/draws/losses or pentanomial, received both'];
  }
  return 'pentanomial' in record
    ? pentanomialProblems(record.pentanomial, gamesPlayed)
    : trinomialProblems(record, gamesPlayed);
}

function trinomialProblems(record: Record<string, unknown>, gamesPlayed: number | undefined): string[] {
  const problems: string[] = [];
  for (const field of TRINOMIAL_FIELDS) {
    if (!isCount(record[field])) {
      problems.push(`${field}: expected a non-negative integer, received ${describe(record[field])}`);
    }
  }
  if (problems.length > 0) return problems;
  const total = (record.wins as number) + (record.draws as number) + (record.losses as number);
  if (total === 0) problems.push('wins + draws + losses: expected at least one game, received 0');
  if (gamesPlayed !== undefined && gamesPlayed !== total) {
    problems.push(
      `games_played: expected wins + draws + losses = ${total}, received ${describe(gamesPlayed)}`,
    );
  }
  return problems;
}

function pentanomialProblems(counts: unknown, gamesPlayed: number | undefined): string[] {
  if (!Array.isArray(counts) || counts.length !== 5) {
    return [
      `pentanomial: expected 5 pair counts [LL, LD+DL, LW+DD+WL, DW+WD, WW], received ${describe(counts)}`,
    ];
  }
  const problems: string[] = [];
  counts.forEach((count: unknown, i) => {
    if (!isCount(count))
      problems.push(`pentanomial[${i}]: expected a non-negative integer, received ${describe(count)}`);
  });
  if (problems.length > 0) return problems;
  const pairs = (counts as number[]).reduce((sum, count) => sum + count, 0);
  if (pairs === 0) problems.push('pentanomial: expected at least one game pair, received all-zero counts');
  if (gamesPlayed !== undefined && gamesPlayed !== 2 * pairs) {
    problems.push(`games_played: expected 2 × pairs = ${2 * pairs}, received ${describe(gamesPlayed)}`);
  }
  return problems;
}

function assertPolicy(policy: StatisticalPolicy): void {
  const problems: string[] = [];
  if (!(policy.confidence > 0 && policy.confidence < 1)) {
    problems.push(
      `confidence: expected a number strictly between 0 and 1, received ${describe(policy.confidence)}`,
    );
  }
  if (!Number.isFinite(policy.elo0))
    problems.push(`elo0: expected a finite number, received ${describe(policy.elo0)}`);
  if (!Number.isFinite(policy.elo1) || !(policy.elo1 < policy.elo0)) {
    problems.push(
      `elo1: expected a finite number below elo0 = ${policy.elo0} (H1 is a regression), received ${describe(policy.elo1)}`,
    );
  }
  for (const severity of SEVERITIES) {
    if (!Number.isFinite(policy.eloDrop?.[severity])) {
      problems.push(
        `eloDrop.${severity}: expected a finite number, received ${describe(policy.eloDrop?.[severity])}`,
      );
    }
  }
  if (policy.alphaSpending !== 'life' && policy.alphaSpending !== 'per_test') {
    problems.push(`alphaSpending: expected "life" or "per_test", received ${describe(policy.alphaSpending)}`);
  }
  if (problems.length > 0) throw new RangeError(`statistical policy: ${problems.join('; ')}`);
  sprtBounds(policy.alpha, policy.beta); // throws on alpha/beta outside (0, 1) or alpha + beta >= 1
}

/**
 * Reads a persisted accumulator: checks its shape and fills the fields that a state persisted before alpha
 * spending lacks (it was then always the first test). Throws a RangeError rather than guess.
 */
function readAccumulator(previous: StoredAccumulator, policy: StatisticalPolicy): SprtAccumulator {
  const length = previous.kind === 'pentanomial' ? 5 : previous.kind === 'trinomial' ? 3 : -1;
  const test = previous.test ?? 1;
  const passes = previous.passes ?? 0;
  const valid =
    length > 0 &&
    Array.isArray(previous.results) &&
    previous.results.length === length &&
    previous.results.every(isCount) &&
    Number.isInteger(previous.windows) &&
    previous.windows >= 0 &&
    previous.windows > 0 === previous.results.some((n) => n > 0) &&
    Number.isInteger(test) &&
    test >= 1 &&
    Number.isInteger(passes) &&
    passes >= 0 &&
    passes < test;
  if (!valid) {
    throw new RangeError(
      `SPRT accumulator: expected {kind: "trinomial", results: 3 counts} or {kind: "pentanomial", results: 5 counts} with windows >= 0 (0 exactly when no game) and test > passes >= 0, received ${JSON.stringify(previous)}`,
    );
  }
  return {
    ...freshTest(previous.kind, test, passes, previous.lastPassedAt ?? null, policy),
    results: previous.results,
    windows: previous.windows,
    llr: previous.llr ?? 0,
  };
}

function windowResults(window: WindowOutcomes): { kind: SprtAccumulator['kind']; results: number[] } {
  if ('pentanomial' in window) return { kind: 'pentanomial', results: [...window.pentanomial] };
  return { kind: 'trinomial', results: [window.losses, window.draws, window.wins] };
}

/** ζ(3) = Σ 1/j³: the j-th test's share of α is 1/(ζ(3)·j³), and the shares add up to exactly 1. */
const ZETA_3 = 1.2020569031595942;

/**
 * α of the j-th test of a version. With `life` spending the shares fall as 1/j³: the first test gets 83%
 * of α, so the first test, which catches almost every real regression, is barely slower than a lone
 * α-test (its upper bound is ln((1−β)/0.0416) = 3.13 instead of 2.94), while a healthy version that
 * passes test after test spends at most α in all. docs/detection.md compares 1/(j(j+1)) and 6/(π²j²),
 * which wait longer in the first test, CUSUM and a never-restarted test.
 */
export function testAlpha(policy: Pick<StatisticalPolicy, 'alpha' | 'alphaSpending'>, test: number): number {
  return policy.alphaSpending === 'per_test' ? policy.alpha : policy.alpha / (ZETA_3 * test ** 3);
}

/** The α spent by the first `tests` tests: what a healthy version has already risked. */
export function alphaSpent(
  policy: Pick<StatisticalPolicy, 'alpha' | 'alphaSpending'>,
  tests: number,
): number {
  if (policy.alphaSpending === 'per_test') return policy.alpha * tests;
  if (tests <= 64) {
    let spent = 0;
    for (let j = 1; j <= tests; j += 1) spent += testAlpha(policy, j);
    return spent;
  }
  // Σ_{j>k} 1/j³ = 1/(2k²) − 1/(2k³) + 1/(4k⁴) + O(k⁻⁶) (Euler–Maclaurin): a long life costs no loop.
  const k = tests;
  const tail = 1 / (2 * k * k) - 1 / (2 * k ** 3) + 1 / (4 * k ** 4);
  return policy.alpha * (1 - tail / ZETA_3);
}

/** A fresh test with no window yet. */
function freshTest(
  kind: SprtAccumulator['kind'],
  test: number,
  passes: number,
  lastPassedAt: number | null,
  policy: StatisticalPolicy,
): SprtAccumulator {
  const alpha = testAlpha(policy, test);
  const bounds = sprtBounds(alpha, policy.beta);
  return {
    kind,
    results: kind === 'pentanomial' ? [0, 0, 0, 0, 0] : [0, 0, 0],
    windows: 0,
    test,
    passes,
    lastPassedAt,
    llr: 0,
    lower: bounds.lower,
    upper: bounds.upper,
    alpha,
    alphaSpent: alphaSpent(policy, test - 1),
  };
}

/**
 * The confidence of the bound at the k-th look of one SPRT run: 1 − (1 − c)/(k(k+1)). The miss rates add
 * up to Σ (1 − c)/(k(k+1)) = 1 − c over any number of looks, so by the union bound the drop is at least
 * `eloDropLower` at every look at once with probability c. A fixed per-look confidence would not: twenty
 * looks at 95% each give far more than one false alarm in twenty (docs/detection.md).
 */
export function confidenceAtLook(confidence: number, look: number): number {
  return 1 - (1 - confidence) / (look * (look + 1));
}

function severityOfDrop(drop: number, ladder: Readonly<Ladder>): Severity | null {
  let found: Severity | null = null;
  for (const severity of SEVERITIES) if (drop >= ladder[severity]) found = severity;
  return found;
}

function fixed(value: number, digits: number): string {
  return value.toFixed(digits);
}

function signed(value: number, digits: number): string {
  return `${value > 0 ? '+' : ''}${value.toFixed(digits)}`;
}

function describeHypothesis(policy: StatisticalPolicy): string {
  return policy.elo0 === 0
    ? `a ${Number((-policy.elo1).toFixed(2))}-Elo regression`
    : `Elo ${signed(policy.elo1, 1)} rather than ${signed(policy.elo0, 1)}`;
}

/**
 * Adds one window to the running test and decides; the core of the detector, without the report.
 *
 * - The SPRT uses the logistic LLR (fishtest LLR_logistic) on the results since the test started, with
 *   Wald's bounds for the test's α (testAlpha) and β: accept_h1 is a rollback decision, accept_h0 passes
 *   the version; either way the next window starts the next test.
 * - The severity comes from the same cumulative results: the largest ladder step that the score-type
 *   lower bound of the drop reaches, at the confidence for this look of the test (confidenceAtLook).
 * - A window whose format differs from the test's (trinomial after pentanomial or the reverse) starts the
 *   test over under the same number: pair counts cannot be split into games, nor games paired.
 *
 * `at` (epoch ms) dates an accept_h0. Throws a RangeError for invalid outcomes, policy or accumulator.
 */
export function advanceTest(
  window: WindowOutcomes,
  previous: StoredAccumulator | null,
  policy: StatisticalPolicy,
  at: number | null = null,
): TestStep {
  const problems = validateOutcomes(window);
  if (problems.length > 0) throw new RangeError(`window outcomes: ${problems.join('; ')}`);
  assertPolicy(policy);
  const current = windowResults(window);
  const prior = previous === null ? null : readAccumulator(previous, policy);
  const restarted = prior !== null && prior.windows > 0 && prior.kind !== current.kind;
  const test = prior?.test ?? 1;
  const passes = prior?.passes ?? 0;
  const lastPassedAt = prior?.lastPassedAt ?? null;
  const base = prior !== null && prior.kind === current.kind ? prior : null;
  const results =
    base === null ? current.results : base.results.map((count, i) => count + (current.results[i] as number));
  const windows = (base?.windows ?? 0) + 1;
  const cumulative = results as unknown as GameResults;

  const alpha = testAlpha(policy, test);
  const bounds = sprtBounds(alpha, policy.beta);
  const llr = llrLogistic(policy.elo0, policy.elo1, cumulative);
  const decision = sprtDecision(llr, bounds);
  const lookConfidence = confidenceAtLook(policy.confidence, windows);
  const eloDropLower = roundDrop(-eloUpperBound(cumulative, lookConfidence));
  const severity = severityOfDrop(eloDropLower, policy.eloDrop);

  let accumulator: SprtAccumulator;
  if (decision === 'accept_h0') accumulator = freshTest(current.kind, test + 1, passes + 1, at, policy);
  else if (decision === 'accept_h1')
    accumulator = freshTest(current.kind, test + 1, passes, lastPassedAt, policy);
  else
    accumulator = { ...freshTest(current.kind, test, passes, lastPassedAt, policy), results, windows, llr };
  return {
    severity,
    eloDropLower,
    llr,
    lower: bounds.lower,
    upper: bounds.upper,
    alpha,
    decision,
    games: gamesOf(cumulative),
    windows,
    test,
    kind: current.kind,
    results,
    restarted,
    previousKind: prior?.kind ?? null,
    accumulator,
  };
}

function percentOf(value: number): string {
  return `${Number((value * 100).toPrecision(3))}%`;
}

/**
 * Adds one window to the running test of the current production version, decides and reports: the
 * decision and severity of advanceTest, with the Elo estimate and its score-type interval over the test,
 * the established drop, and a reason for people.
 */
export function assessStatistically(
  window: WindowOutcomes,
  previous: StoredAccumulator | null,
  policy: StatisticalPolicy,
  at: number | null = null,
): StatisticalAssessment {
  const step = advanceTest(window, previous, policy, at);
  const cumulative = step.results as unknown as GameResults;
  const estimate = eloEstimate(cumulative, policy.confidence);
  const interval = eloScoreInterval(cumulative, policy.confidence);
  const elo: EloEstimate = {
    ...estimate,
    lower: interval.lower,
    upper: interval.upper,
    elo95: (interval.upper - interval.lower) / 2,
  };
  const { eloDropLower, severity, llr, lower, upper, decision, games, windows, test } = step;

  const percent = `${Number((policy.confidence * 100).toFixed(2))}%`;
  const described = `Elo ${signed(elo.elo, 1)} (${percent} interval ${signed(elo.lower, 1)} to ${signed(elo.upper, 1)}) over ${games} games`;
  const established =
    severity === null
      ? `no drop of ${policy.eloDrop.minor} Elo or more established at ${percent}`
      : `a drop of at least ${fixed(eloDropLower, 1)} Elo established at ${percent} (${severity})`;
  const testName = `SPRT test ${test} (alpha ${percentOf(step.alpha)})`;
  let verdict: string;
  if (decision === 'accept_h1') {
    verdict = `${testName} accepted H1 (LLR ${fixed(llr, 2)} >= ${fixed(upper, 2)}): ${describeHypothesis(policy)} is likely`;
  } else if (decision === 'accept_h0') {
    verdict = `${testName} accepted H0 (LLR ${fixed(llr, 2)} <= ${fixed(lower, 2)}): no sign of ${describeHypothesis(policy)}, the version passes and test ${test + 1} starts`;
  } else {
    verdict = `${testName} continues (LLR ${fixed(llr, 2)} within ${fixed(lower, 2)}..${fixed(upper, 2)}, window ${windows})`;
  }
  const prefix = step.restarted
    ? `Outcome format changed from ${step.previousKind} to ${step.kind}, so the SPRT restarted. `
    : '';

  return {
    severity,
    eloDropLower,
    elo,
    sprt: {
      llr,
      lower,
      upper,
      elo0: policy.elo0,
      elo1: policy.elo1,
      decision,
      games,
      windows,
      kind: step.kind,
      test,
      alpha: step.alpha,
    },
    accumulator: step.accumulator,
    reason: `${prefix}${verdict}; ${described}; ${established}`,
  };
}

/**
 * The statistical mode's decision, through the threshold mode's decide() so the approval policy is the
 * same (CRITICAL never waits; otherwise requireApprovalForSevere sends it to an operator):
 * - a CRITICAL drop established by the score-type bound rolls back, whatever the SPRT says: worse evidence
 *   is never handled less automatically than in threshold mode, and the bound, spent over the looks, keeps
 *   a lucky small window from claiming it;
 * - the SPRT's acceptance of H1 rolls back as a forced action;
 * - a milder severity alone never rolls back: the benchmark showed that letting a confident SEVERE or
 *   MODERATE drop roll back on its own pushes the false-rollback rate past α while saving few games
 *   (docs/detection.md). No escalation by streak either: it amplifies noise.
 */
export function decideStatistically(
  assessment: {
    readonly severity: Severity | null;
    readonly eloDropLower: number | null;
    readonly sprt: { readonly decision: SprtDecision };
  },
  policy: DecisionPolicy,
): Decision {
  if (assessment.severity === 'critical') return 'rollback';
  if (assessment.sprt.decision !== 'accept_h1') return 'watch';
  return decide({ severity: assessment.severity ?? 'minor', forced: true }, assessment.eloDropLower, policy);
}
