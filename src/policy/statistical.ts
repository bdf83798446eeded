import { decide, type Decision } from './decide.ts';
import { SEVERITIES, type Severity } from './severity.ts';
import { roundDrop, type DecisionPolicy, type Ladder } from './thresholds.ts';
import {
  eloEstimate,
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
 * "no regression" and "a regression of |elo1 − elo0| Elo" with error rates α and β, however many windows
 * it takes. The severity grades the drop we are confident of. Pure: the state is passed in and returned.
 */

export interface StatisticalPolicy {
  /** Simultaneous confidence of the severity's lower bound over the looks of one SPRT run. */
  readonly confidence: number;
  /** H0, in logistic Elo of the current version against its baseline (0: no regression). */
  readonly elo0: number;
  /** H1 (-30: a 30-Elo regression); must be below elo0. */
  readonly elo1: number;
  /** P(accept H1 | H0): the false-rollback rate of one test. */
  readonly alpha: number;
  /** P(accept H0 | H1): the missed-regression rate of one test. */
  readonly beta: number;
  /** The same severity ladder as threshold mode, applied to the lower bound of the drop. */
  readonly eloDrop: Readonly<Ladder>;
}

export const DEFAULT_STATISTICAL_POLICY: StatisticalPolicy = Object.freeze({
  confidence: 0.95,
  elo0: 0,
  elo1: -30,
  alpha: 0.05,
  beta: 0.05,
  eloDrop: Object.freeze({ minor: 20, moderate: 35, severe: 50, critical: 75 }),
});

/** The SPRT's state: results since the last reset. JSON-safe, persisted in the model actor's context. */
export interface SprtAccumulator {
  readonly kind: 'trinomial' | 'pentanomial';
  /** [losses, draws, wins] or the five pentanomial pair counts. */
  readonly results: readonly number[];
  readonly windows: number;
}

/** One evaluation's games against the baseline, as single games or as colour-swapped pairs. */
export type WindowOutcomes =
  | { readonly wins: number; readonly draws: number; readonly losses: number }
  | { readonly pentanomial: Pentanomial };

export interface StatisticalAssessment {
  /** From the lower confidence bound of the cumulative drop; null when not even MINOR is established. */
  readonly severity: Severity | null;
  /** The drop (baseline − current, Elo) we are `confidence` sure of, simultaneously over the run's looks. */
  readonly eloDropLower: number;
  /** Current against baseline over the SPRT run (negative: worse), with fishtest's per-look interval. */
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
  };
  /** The state to keep: null after a decision (accept_h0 restarts the test, accept_h1 is a rollback). */
  readonly accumulator: SprtAccumulator | null;
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
  if (problems.length > 0) throw new RangeError(`statistical policy: ${problems.join('; ')}`);
  sprtBounds(policy.alpha, policy.beta); // throws on alpha/beta outside (0, 1) or alpha + beta >= 1
}

function assertAccumulator(previous: SprtAccumulator): void {
  const length = previous.kind === 'pentanomial' ? 5 : previous.kind === 'trinomial' ? 3 : -1;
  const valid =
    length > 0 &&
    Array.isArray(previous.results) &&
    previous.results.length === length &&
    previous.results.every(isCount) &&
    Number.isInteger(previous.windows) &&
    previous.windows > 0;
  if (!valid) {
    throw new RangeError(
      `SPRT accumulator: expected {kind: "trinomial", results: 3 counts} or {kind: "pentanomial", results: 5 counts} with windows >= 1, received ${JSON.stringify(previous)}`,
    );
  }
}

function windowResults(window: WindowOutcomes): { kind: SprtAccumulator['kind']; results: number[] } {
  if ('pentanomial' in window) return { kind: 'pentanomial', results: [...window.pentanomial] };
  return { kind: 'trinomial', results: [window.losses, window.draws, window.wins] };
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
 * Adds one window to the SPRT of the current production version and grades the drop.
 *
 * - The SPRT uses the logistic LLR (fishtest LLR_logistic) on the results since the last reset, with
 *   Wald's bounds for α and β: accept_h1 is a rollback decision, accept_h0 accepts the version and
 *   restarts the test (accumulator null); either way the caller starts the next window from null, as it
 *   does after a promotion.
 * - The severity comes from the same cumulative results: the largest ladder step that the lower
 *   confidence bound of the drop reaches, at the confidence for this look (see confidenceAtLook).
 * - A window whose format differs from the accumulator's (trinomial after pentanomial or the reverse)
 *   restarts the test: pair counts cannot be split into games, nor games paired, and throwing would stall
 *   the model on a format change. The reason says so.
 *
 * Throws a RangeError for invalid outcomes, policy or accumulator.
 */
export function assessStatistically(
  window: WindowOutcomes,
  previous: SprtAccumulator | null,
  policy: StatisticalPolicy,
): StatisticalAssessment {
  const problems = validateOutcomes(window);
  if (problems.length > 0) throw new RangeError(`window outcomes: ${problems.join('; ')}`);
  assertPolicy(policy);
  if (previous !== null) assertAccumulator(previous);

  const current = windowResults(window);
  const restarted = previous !== null && previous.kind !== current.kind;
  const base = previous !== null && !restarted ? previous : null;
  const results =
    base === null ? current.results : base.results.map((count, i) => count + (current.results[i] as number));
  const windows = (base?.windows ?? 0) + 1;
  const cumulative = results as unknown as GameResults;

  const bounds = sprtBounds(policy.alpha, policy.beta);
  const llr = llrLogistic(policy.elo0, policy.elo1, cumulative);
  const decision = sprtDecision(llr, bounds);
  const elo = eloEstimate(cumulative, policy.confidence);
  const eloDropLower = roundDrop(-eloUpperBound(cumulative, confidenceAtLook(policy.confidence, windows)));
  const severity = severityOfDrop(eloDropLower, policy.eloDrop);
  const games = gamesOf(cumulative);

  const percent = `${Number((policy.confidence * 100).toFixed(2))}%`;
  const estimate = `Elo ${signed(elo.elo, 1)} ± ${fixed(elo.elo95, 1)} (${percent}) over ${games} games`;
  const established =
    severity === null
      ? `no drop of ${policy.eloDrop.minor} Elo or more established at ${percent}`
      : `a drop of at least ${fixed(eloDropLower, 1)} Elo established at ${percent} (${severity})`;
  let verdict: string;
  if (decision === 'accept_h1') {
    verdict = `SPRT accepted H1 (LLR ${fixed(llr, 2)} >= ${fixed(bounds.upper, 2)}): ${describeHypothesis(policy)} is likely`;
  } else if (decision === 'accept_h0') {
    verdict = `SPRT accepted H0 (LLR ${fixed(llr, 2)} <= ${fixed(bounds.lower, 2)}): no sign of ${describeHypothesis(policy)}, the test restarts`;
  } else {
    verdict = `SPRT continues (LLR ${fixed(llr, 2)} within ${fixed(bounds.lower, 2)}..${fixed(bounds.upper, 2)}, window ${windows})`;
  }
  const prefix = restarted
    ? `Outcome format changed from ${previous?.kind} to ${current.kind}, so the SPRT restarted. `
    : '';

  return {
    severity,
    eloDropLower,
    elo,
    sprt: {
      llr,
      lower: bounds.lower,
      upper: bounds.upper,
      elo0: policy.elo0,
      elo1: policy.elo1,
      decision,
      games,
      windows,
    },
    accumulator: decision === 'continue' ? { kind: current.kind, results, windows } : null,
    reason: `${prefix}${verdict}; ${estimate}; ${established}`,
  };
}

/**
 * The statistical mode's decision: only the SPRT triggers a rollback. Its acceptance of H1 is treated as
 * a forced action of the threshold mode's decide(), so the approval policy is the same (CRITICAL never
 * waits; otherwise requireApprovalForSevere sends it to an operator). The severity alone never rolls back:
 * the benchmark shows that letting a confident SEVERE or MODERATE (> moderateRollbackEloDrop) drop roll
 * back on its own pushes the false-rollback rate past α while saving only a few games on large drops
 * (docs/detection.md). No escalation by streak either: it amplifies noise.
 */
export function decideStatistically(assessment: StatisticalAssessment, policy: DecisionPolicy): Decision {
  if (assessment.sprt.decision !== 'accept_h1') return 'watch';
  return decide({ severity: assessment.severity ?? 'minor', forced: true }, assessment.eloDropLower, policy);
}
