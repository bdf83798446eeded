import type { Config } from '../config/schema.ts';
import type { DecisionPolicy, ThresholdPolicy } from '../policy/thresholds.ts';
import type { StatisticalPolicy } from '../policy/statistical.ts';
import { lookupTable } from '../domain/model-ref.ts';

export type DetectionMode = 'threshold' | 'statistical';

/** Everything the model machine decides with; derived once from the validated configuration. */
export interface ModelPolicy {
  readonly detection: ThresholdPolicy & DecisionPolicy & { readonly mode: DetectionMode };
  readonly statistical: StatisticalPolicy;
  /** Per-model overrides of the detection mode. */
  readonly modeByModel: Readonly<Record<string, DetectionMode>>;
  readonly approvalTimeoutMs: number;
  readonly onApprovalTimeout: 'rollback' | 'reject';
  readonly cooldownMs: number;
  readonly autoRollbackLimit: { readonly max: number; readonly windowMs: number };
  /** How long a rolled-back model waits for the training config to confirm its pause before alerting. */
  readonly pauseAckGraceMs: number;
}

export const LINEAGE_LIMIT = 50;
export const EVIDENCE_LIMIT = 20;
export const RECENT_INPUT_LIMIT = 64;
/**
 * Inputs kept while a rollback is in flight; beyond this the model answers "busy" (retryable), so a
 * producer or the NATS intake sends it again later instead of Warden growing a snapshot without bound.
 */
export const DEFERRED_INPUT_LIMIT = 32;

export function modelPolicyFrom(config: Config): ModelPolicy {
  return Object.freeze({
    detection: Object.freeze({
      ...config.detection,
      requireApprovalForSevere: config.approval.requireForSevere,
    }),
    statistical: Object.freeze({ ...config.detection.statistical, eloDrop: config.detection.eloDrop }),
    // No prototype: a model named "constructor" or "toString" reads no inherited member as its mode.
    modeByModel: Object.freeze(
      lookupTable(
        Object.fromEntries(
          Object.entries(config.models).flatMap(([id, m]) =>
            m.detectionMode ? [[id, m.detectionMode]] : [],
          ),
        ),
      ),
    ),
    approvalTimeoutMs: config.approval.timeoutSeconds * 1000,
    onApprovalTimeout: config.approval.onTimeout,
    cooldownMs: config.cooldownSeconds * 1000,
    autoRollbackLimit: Object.freeze({
      max: config.autoRollbackLimit.max,
      windowMs: config.autoRollbackLimit.windowSeconds * 1000,
    }),
    pauseAckGraceMs: 30_000,
  });
}
