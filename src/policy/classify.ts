import { RECOMMENDED_ACTION, SEVERITIES, type Severity } from './severity.ts';
import { roundDrop, type Ladder, type ThresholdPolicy } from './thresholds.ts';

/** The metrics of one evaluation, with the baseline they are compared against. */
export interface EvaluationMetrics {
  readonly currentElo?: number | undefined;
  readonly baselineElo?: number | undefined;
  readonly currentWinRate?: number | undefined;
  readonly baselineWinRate?: number | undefined;
  readonly errorRate?: number | undefined;
}

export interface Classification {
  /** null: no regression. */
  readonly severity: Severity | null;
  /** baseline - current, rounded; null when either side is missing. */
  readonly eloDrop: number | null;
  readonly winRateDrop: number | null;
  readonly errorRate: number | null;
  /** Which criteria fired, for the reason text. */
  readonly reason: string;
}

function ladderSeverity(value: number | null, ladder: Readonly<Ladder>): Severity | null {
  if (value === null) return null;
  let found: Severity | null = null;
  for (const severity of SEVERITIES) if (value >= ladder[severity]) found = severity;
  return found;
}

function drop(baseline: number | undefined, current: number | undefined): number | null {
  if (baseline === undefined || current === undefined) return null;
  return roundDrop(baseline - current);
}

function worst(...severities: Array<Severity | null>): Severity | null {
  let found: Severity | null = null;
  for (const s of severities)
    if (s !== null && (found === null || SEVERITIES.indexOf(s) > SEVERITIES.indexOf(found))) found = s;
  return found;
}

function formatNumber(value: number, digits: number): string {
  return Number(value.toFixed(digits)).toString();
}

/**
 * Classifies one evaluation against its baseline. Every criterion is "at least", on rounded drops; the
 * worst criterion wins. The reason names every criterion that fired, including an error rate exactly at
 * the threshold (the seed printed "Unknown regression" there).
 */
export function classify(metrics: EvaluationMetrics, policy: ThresholdPolicy): Classification {
  const eloDrop = drop(metrics.baselineElo, metrics.currentElo);
  const winRateDrop = drop(metrics.baselineWinRate, metrics.currentWinRate);
  const errorRate = metrics.errorRate ?? null;

  const byElo = ladderSeverity(eloDrop, policy.eloDrop);
  const byWinRate = ladderSeverity(winRateDrop, policy.winRateDrop);
  const byError: Severity | null =
    errorRate !== null && errorRate >= policy.errorRateSevere ? 'severe' : null;
  const severity = worst(byElo, byWinRate, byError);

  const parts: string[] = [];
  if (byElo !== null && eloDrop !== null) parts.push(`Elo dropped by ${formatNumber(eloDrop, 1)} (${byElo})`);
  if (byWinRate !== null && winRateDrop !== null) {
    parts.push(`Win rate dropped by ${formatNumber(winRateDrop * 100, 1)}% (${byWinRate})`);
  }
  if (byError !== null && errorRate !== null)
    parts.push(`Error rate at ${formatNumber(errorRate * 100, 1)}% (severe)`);
  return {
    severity,
    eloDrop,
    winRateDrop,
    errorRate,
    reason: parts.length > 0 ? parts.join('; ') : 'No regression',
  };
}

export function recommendedAction(severity: Severity): string {
  return RECOMMENDED_ACTION[severity];
}
