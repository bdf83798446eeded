import { raiseOneLevel, type Severity } from './severity.ts';
import type { DecisionPolicy } from './thresholds.ts';

export type Decision = 'watch' | 'rollback' | 'await_approval';

export interface Escalation {
  readonly severity: Severity;
  /** The streak reached forceActionAt: the policy acts even on a mild severity. */
  readonly forced: boolean;
}

/**
 * Escalation by consecutive regressions. From the escalateAt-th regression in a row the severity is raised
 * one level; from the forceActionAt-th, action is forced. Count alone never makes CRITICAL: only evidence
 * of a CRITICAL drop does.
 */
export function escalate(base: Severity, consecutive: number, policy: DecisionPolicy): Escalation {
  const severity = consecutive >= policy.escalateAt ? raiseOneLevel(base) : base;
  return { severity, forced: consecutive >= policy.forceActionAt };
}

/**
 * The decision is monotone in severity. CRITICAL never waits; every other automatic rollback waits for an
 * operator when approval is required for SEVERE (the seed rolled a MODERATE back at once while a SEVERE
 * waited).
 */
export function decide(escalation: Escalation, eloDrop: number | null, policy: DecisionPolicy): Decision {
  const { severity, forced } = escalation;
  if (severity === 'critical') return 'rollback';
  const wantsRollback =
    severity === 'severe' ||
    forced ||
    (severity === 'moderate' && eloDrop !== null && eloDrop > policy.moderateRollbackEloDrop);
  if (!wantsRollback) return 'watch';
  return policy.requireApprovalForSevere ? 'await_approval' : 'rollback';
}
