/**
 * Chooses the detector for one evaluation. Threshold mode classifies point estimates (model-logic does it
 * with src/policy). Statistical mode, when the evaluation carries game outcomes against the baseline,
 * decides from a sequence of SPRTs across the evaluation windows of the production version, with alpha
 * spent over the tests of its life, and grades the drop by a confidence bound (src/policy/statistical.ts;
 * docs/detection.md has the numbers behind the choice).
 */
import type { Statistics } from '../domain/events.ts';
import type { EvaluationMetrics } from '../policy/classify.ts';
import type { Decision } from '../policy/decide.ts';
import { maxSeverity, type Severity } from '../policy/severity.ts';
import { roundDrop } from '../policy/thresholds.ts';
import { assessStatistically, decideStatistically, type WindowOutcomes } from '../policy/statistical.ts';
import type { ModelPolicy } from './model-policy.ts';
import type { SprtState, WindowOutcomesInput } from './model-types.ts';

export type DetectorResult =
  | { readonly kind: 'threshold' }
  | {
      readonly kind: 'statistical';
      readonly severity: Severity | null;
      readonly decision: Decision;
      /** The SPRT accepted H1: a 30-Elo (elo1) regression is likely. */
      readonly sprtAccepted: boolean;
      readonly eloDrop: number | null;
      readonly winRateDrop: number | null;
      readonly errorRate: number | null;
      readonly reason: string;
      readonly statistics: Statistics;
      readonly sprt: SprtState | null;
    };

export interface DetectorInput {
  readonly modelId: string;
  readonly metrics: EvaluationMetrics;
  readonly outcomes: WindowOutcomesInput | undefined;
  readonly gamesPlayed: number;
  readonly sprt: SprtState | null;
  readonly policy: ModelPolicy;
  /** When the evaluation happened (epoch ms): dates a passed test. */
  readonly at: number;
}

function windowOf(outcomes: WindowOutcomesInput | undefined): WindowOutcomes | null {
  if (outcomes?.pentanomial) return { pentanomial: outcomes.pentanomial };
  if (outcomes?.wins !== undefined && outcomes.draws !== undefined && outcomes.losses !== undefined) {
    return { wins: outcomes.wins, draws: outcomes.draws, losses: outcomes.losses };
  }
  return null;
}

/**
 * Whether this evaluation goes to the statistical test: statistical mode for the model and game outcomes
 * in the evaluation. Such a window counts however small (the test weighs it by its games); `minGames`
 * gates only the threshold rule's single-window judgement.
 */
export function judgedStatistically(
  modelId: string,
  outcomes: WindowOutcomesInput | undefined,
  policy: ModelPolicy,
): boolean {
  // No game outcomes, no statistical judgement: decided before the per-model lookup (the common case).
  if (outcomes === undefined) return false;
  const mode = policy.modeByModel[modelId] ?? policy.detection.mode;
  return mode === 'statistical' && windowOf(outcomes) !== null;
}

export function assessWithDetector(input: DetectorInput): DetectorResult {
  const { policy } = input;
  const window = judgedStatistically(input.modelId, input.outcomes, policy) ? windowOf(input.outcomes) : null;
  if (window === null) return { kind: 'threshold' };

  const assessment = assessStatistically(window, input.sprt, policy.statistical, input.at);
  const errorRate = input.metrics.errorRate ?? null;
  // The error rate is not a game statistic: at or above its threshold it is SEVERE, as in threshold mode,
  // and like the threshold rule it is judged only on a window of at least minGames games.
  const errorSevere =
    errorRate !== null &&
    errorRate >= policy.detection.errorRateSevere &&
    input.gamesPlayed >= policy.detection.minGames;
  const sprtAccepted = assessment.sprt.decision === 'accept_h1';
  // An SPRT acceptance with no graded drop yet is reported as MINOR: a regression is likely, its size is not.
  let severity = maxSeverity(assessment.severity, errorSevere ? 'severe' : null);
  if (severity === null && sprtAccepted) severity = 'minor';
  let decision = decideStatistically(assessment, policy.detection);
  if (decision === 'watch' && errorSevere)
    decision = policy.detection.requireApprovalForSevere ? 'await_approval' : 'rollback';
  const { metrics } = input;
  const baselineWinRate = metrics.baselineWinRate;
  return {
    kind: 'statistical',
    severity,
    decision,
    sprtAccepted,
    eloDrop: roundDrop(-assessment.elo.elo),
    winRateDrop:
      baselineWinRate !== undefined && metrics.currentWinRate !== undefined
        ? roundDrop(baselineWinRate - metrics.currentWinRate)
        : null,
    errorRate,
    reason: errorSevere
      ? `${assessment.reason}; error rate at ${Number((errorRate * 100).toFixed(1))}% (severe)`
      : assessment.reason,
    statistics: {
      mode: 'statistical',
      elo: assessment.elo.elo,
      elo_lower: assessment.elo.lower,
      elo_upper: assessment.elo.upper,
      confidence: assessment.elo.confidence,
      llr: assessment.sprt.llr,
      llr_lower: assessment.sprt.lower,
      llr_upper: assessment.sprt.upper,
      sprt_decision: assessment.sprt.decision,
      games: assessment.sprt.games,
      elo0: assessment.sprt.elo0,
      elo1: assessment.sprt.elo1,
      format: assessment.sprt.kind,
      test_number: assessment.sprt.test,
    },
    sprt: assessment.accumulator,
  };
}
