/**
 * Chooses the detector for one evaluation. Threshold mode classifies point estimates (model-logic does it
 * with src/policy). Statistical mode, when the evaluation carries game outcomes against the baseline,
 * decides from an SPRT across the evaluation windows of the production version and grades the drop by a
 * confidence bound (src/policy/statistical.ts; docs/detection.md has the numbers behind the choice).
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
  readonly sprt: SprtState | null;
  readonly policy: ModelPolicy;
}

function windowOf(outcomes: WindowOutcomesInput | undefined): WindowOutcomes | null {
  if (outcomes?.pentanomial) return { pentanomial: outcomes.pentanomial };
  if (outcomes?.wins !== undefined && outcomes.draws !== undefined && outcomes.losses !== undefined) {
    return { wins: outcomes.wins, draws: outcomes.draws, losses: outcomes.losses };
  }
  return null;
}

export function assessWithDetector(input: DetectorInput): DetectorResult {
  const { policy } = input;
  const mode = policy.modeByModel[input.modelId] ?? policy.detection.mode;
  const window = mode === 'statistical' ? windowOf(input.outcomes) : null;
  if (window === null) return { kind: 'threshold' };

  const assessment = assessStatistically(window, input.sprt, policy.statistical);
  const errorRate = input.metrics.errorRate ?? null;
  // The error rate is not a game statistic: at or above its threshold it is SEVERE, as in threshold mode.
  const errorSevere = errorRate !== null && errorRate >= policy.detection.errorRateSevere;
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
    },
    sprt: assessment.accumulator,
  };
}
