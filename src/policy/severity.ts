/** Regression severities, mildest first. The order is the policy's notion of "worse". */
export const SEVERITIES = ['minor', 'moderate', 'severe', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function severityRank(severity: Severity | null): number {
  return severity === null ? -1 : SEVERITIES.indexOf(severity);
}

export function maxSeverity(a: Severity | null, b: Severity | null): Severity | null {
  return severityRank(a) >= severityRank(b) ? a : b;
}

/** One level up, capped: escalation by count alone never reaches CRITICAL. */
export function raiseOneLevel(severity: Severity): Severity {
  if (severity === 'minor') return 'moderate';
  if (severity === 'moderate') return 'severe';
  return severity;
}

/** The seed's recommended_action texts, kept so existing dashboards read the same. */
export const RECOMMENDED_ACTION: Record<Severity, string> = {
  minor: 'Monitor closely, may recover',
  moderate: 'Investigate causes, consider retraining',
  severe: 'Halt promotion, investigate immediately',
  critical: 'Rollback recommended, stop deployments',
};
