import type { Severity } from './severity.ts';

/** Per-severity "at least" thresholds for one metric. */
export type Ladder = Record<Severity, number>;

/** What the threshold classifier needs; a slice of the validated configuration. */
export interface ThresholdPolicy {
  readonly minGames: number;
  readonly eloDrop: Readonly<Ladder>;
  readonly winRateDrop: Readonly<Ladder>;
  /** An error rate at least this high is SEVERE. */
  readonly errorRateSevere: number;
}

/** What the decision step needs. */
export interface DecisionPolicy {
  /** The streak length at which severity is raised one level. */
  readonly escalateAt: number;
  /** The streak length at which action is forced (a rollback, subject to approval). */
  readonly forceActionAt: number;
  /** On MODERATE, roll back only when elo_drop is strictly above this. */
  readonly moderateRollbackEloDrop: number;
  readonly requireApprovalForSevere: boolean;
}

/**
 * Drops are rounded to 1e-9 before any comparison, so that float subtraction cannot land a hair under a
 * boundary (0.60 - 0.45 = 0.14999999999999997 is a 0.15 drop). Metrics carry nowhere near 9 significant
 * decimals of real information, so nothing is lost.
 */
export function roundDrop(value: number): number {
  return Math.round(value * 1e9) / 1e9;
}
