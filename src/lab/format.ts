/** The what-if report for people: one row per model, the totals, the differences and the bad lines. */
import type { ComparisonReport, RollbackRow } from './replay.ts';

function pad(cells: string[][]): string[] {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells.map((row) =>
    row
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

const arrow = (a: string | number | null, b: string | number | null): string => {
  const l = a === null ? '-' : String(a);
  const r = b === null ? '-' : String(b);
  return l === r ? l : `${l} -> ${r}`;
};

const rollback = (r: RollbackRow): string =>
  `${r.from_version} -> ${r.to_version} at ${r.at} (${r.trigger}` +
  (r.minutes_from_first_bad_evaluation === null
    ? ')'
    : `, ${r.minutes_from_first_bad_evaluation} min after the first bad evaluation)`);

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Issues beyond this many are counted, not listed (--json lists them all). */
const ISSUES_SHOWN = 50;

export function formatReport(report: ComparisonReport): string {
  const h = report.history;
  const out: string[] = [];
  out.push(
    `history: ${h.source}: ${h.inputs} inputs (${h.applied} applied, ${h.skipped} skipped, ${plural(h.warnings, 'warning')}), ${h.from ?? '-'} .. ${h.until ?? '-'}`,
  );
  out.push('');
  const rows = [
    ['model', 'rollbacks', 'added', 'removed', 'approvals', 'min to rollback', 'paused h'],
    ...report.models.map((m) => [
      m.model_id,
      arrow(m.live.rollbacks.length, m.candidate.rollbacks.length),
      m.rollbacks_added.length > 0 ? `+${m.rollbacks_added.length}` : '0',
      m.rollbacks_removed.length > 0 ? `-${m.rollbacks_removed.length}` : '0',
      arrow(m.live.approvals_requested, m.candidate.approvals_requested),
      arrow(m.live.median_minutes_to_rollback, m.candidate.median_minutes_to_rollback),
      arrow(m.live.training_paused_hours, m.candidate.training_paused_hours),
    ]),
    [
      'TOTAL',
      arrow(report.totals.live.rollbacks, report.totals.candidate.rollbacks),
      report.totals.rollbacks_added > 0 ? `+${report.totals.rollbacks_added}` : '0',
      report.totals.rollbacks_removed > 0 ? `-${report.totals.rollbacks_removed}` : '0',
      arrow(report.totals.live.approvals_requested, report.totals.candidate.approvals_requested),
      arrow(
        report.totals.live.median_minutes_to_rollback,
        report.totals.candidate.median_minutes_to_rollback,
      ),
      arrow(report.totals.live.training_paused_hours, report.totals.candidate.training_paused_hours),
    ],
  ];
  out.push(...pad(rows));
  out.push(
    '(live -> candidate where they differ; min to rollback: median minutes from the first bad evaluation)',
  );
  const changed = report.models.filter((m) => m.rollbacks_added.length + m.rollbacks_removed.length > 0);
  if (changed.length > 0) {
    out.push('');
    out.push('differences:');
    for (const m of changed) {
      for (const r of m.rollbacks_added)
        out.push(`  + ${m.model_id}: the candidate rolls back ${rollback(r)}`);
      for (const r of m.rollbacks_removed)
        out.push(`  - ${m.model_id}: the candidate does not roll back ${rollback(r)}`);
    }
  }
  const problems = report.history.skipped + report.history.warnings;
  if (problems > 0) {
    out.push('');
    out.push(`problems in the history (${problems}; the replay went on):`);
    for (const issue of report.issues.slice(0, ISSUES_SHOWN)) {
      out.push(
        `  line ${issue.line}: ${issue.level === 'warning' ? 'warning: ' : 'skipped: '}${issue.problem}`,
      );
    }
    if (problems > ISSUES_SHOWN) {
      const listed = report.issues.length;
      out.push(
        `  ... and ${problems - ISSUES_SHOWN} more (--json lists ${listed === problems ? 'them all' : `the first ${listed}`})`,
      );
    }
  }
  out.push('');
  out.push(`verdict: ${report.verdict.failed ? 'FAIL' : 'ok'}: ${report.verdict.reason}`);
  return `${out.join('\n')}\n`;
}
