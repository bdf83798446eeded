import type { ModelStatus, TrainingStatus } from '../warden.ts';
import type { CommandReply, HistoryView, StatusView } from './client.ts';

/** Plain-text views for a person at a terminal; scripts use --json. */

type Cell = string | number | null | undefined;

const text = (cell: Cell): string =>
  cell === null || cell === undefined || cell === '' ? '-' : String(cell);

/** Left-aligned columns, two spaces apart; the last column is not padded (long reasons wrap naturally). */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly Cell[]>): string {
  const cells = [headers.map(String), ...rows.map((row) => row.map(text))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i]?.length ?? 0)));
  return cells
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** ISO time without milliseconds: 2026-01-01T00:05:00Z. */
const when = (iso: string | null | undefined): string | null => (iso ? iso.replace(/\.\d{3}Z$/, 'Z') : null);
const fromEpochSeconds = (seconds: unknown): string | null =>
  typeof seconds === 'number' ? when(new Date(seconds * 1000).toISOString()) : null;

function pendingSummary(model: ModelStatus): string | null {
  const p = model.pending_approval;
  if (!p) return null;
  return `${p.severity} -> ${p.to_version}, ${p.held_because}, until ${when(p.deadline)}`;
}

export function formatStatus(view: StatusView): string {
  const parts: string[] = [];
  parts.push(
    view.models.length === 0
      ? 'No models yet: Warden starts watching a model at its first promotion.'
      : table(
          ['MODEL', 'STATE', 'PRODUCTION', 'BASELINE ELO', 'STREAK', 'CONFIG', 'PENDING APPROVAL'],
          view.models.map((m) => [
            m.model_id,
            m.state,
            m.production_version,
            m.baseline.elo,
            m.consecutive_regressions,
            m.config_key,
            pendingSummary(m),
          ]),
        ),
  );
  const tested = view.models.filter((m) => m.statistical_test);
  if (tested.length > 0) parts.push(formatStatisticalTests(tested));
  if (view.training.length > 0) parts.push(formatTraining(view.training));
  return parts.join('\n\n');
}

const fixed = (value: number | null, digits: number): string | null =>
  value === null ? null : value.toFixed(digits);
const percent = (value: number | null): string | null =>
  value === null ? null : `${Number((value * 100).toPrecision(3))}%`;

/** The running SPRT of each model in statistical mode: where its LLR stands, and what it has spent. */
export function formatStatisticalTests(models: readonly ModelStatus[]): string {
  return table(
    ['MODEL', 'TEST', 'FORMAT', 'LLR', 'BOUNDS', 'GAMES', 'WINDOWS', 'PASSED', 'ALPHA', 'ALPHA SPENT'],
    models.flatMap((m) => {
      const t = m.statistical_test;
      if (!t) return [];
      return [
        [
          m.model_id,
          t.test,
          t.format,
          fixed(t.llr, 2),
          t.llr_lower === null || t.llr_upper === null
            ? null
            : `${t.llr_lower.toFixed(2)}..${t.llr_upper.toFixed(2)}`,
          t.games,
          t.windows,
          t.tests_passed,
          percent(t.alpha),
          percent(t.alpha_spent),
        ],
      ];
    }),
  );
}

function statisticalTestSummary(model: ModelStatus): string | null {
  const t = model.statistical_test;
  if (!t) return null;
  const bounds =
    t.llr_lower === null || t.llr_upper === null
      ? ''
      : ` within ${t.llr_lower.toFixed(2)}..${t.llr_upper.toFixed(2)}`;
  const passed =
    t.tests_passed > 0
      ? `, passed ${t.tests_passed} of ${t.tests_completed} (last ${when(t.last_passed_at) ?? '-'})`
      : `, ${t.tests_completed} completed`;
  const alpha =
    t.alpha === null ? '' : `, alpha ${percent(t.alpha)} (spent before: ${percent(t.alpha_spent) ?? '-'})`;
  return `test ${t.test} (${t.format}): LLR ${fixed(t.llr, 2) ?? '-'}${bounds} after ${t.games} games in ${t.windows} window${t.windows === 1 ? '' : 's'}${passed}${alpha}`;
}

export function formatTraining(training: readonly TrainingStatus[]): string {
  return table(
    ['CONFIG', 'STATUS', 'MAY TRAIN', 'SINCE', 'BY', 'REASON'],
    training.map((t) => [t.config_key, t.status, t.may_train ? 'yes' : 'no', when(t.since), t.by, t.reason]),
  );
}

export function formatModel(model: ModelStatus, training: TrainingStatus | undefined): string {
  const lines: Array<[string, Cell]> = [
    ['model', model.model_id],
    ['state', model.state],
    ['production', model.production_version],
    ['baseline', `elo ${text(model.baseline.elo)}, win rate ${text(model.baseline.win_rate)}`],
    ['regressions in a row', model.consecutive_regressions],
    [
      'last detection',
      model.last_detection &&
        `${model.last_detection.severity} at ${when(model.last_detection.at)}: ${model.last_detection.reason}`,
    ],
    [
      'pending approval',
      model.pending_approval && `${pendingSummary(model)}: ${model.pending_approval.reason}`,
    ],
    [
      'rolling back',
      model.rolling_back &&
        `${model.rolling_back.from_version} -> ${model.rolling_back.to_version} (${model.rolling_back.trigger})`,
    ],
    ['cooldown until', when(model.cooldown_until)],
    ['statistical test', statisticalTestSummary(model)],
    [
      'training config',
      training
        ? `${training.config_key}: ${training.status}${training.reason ? ` (${training.reason})` : ''}`
        : model.config_key,
    ],
  ];
  const width = Math.max(...lines.map(([label]) => label.length));
  const header = lines.map(([label, value]) => `${`${label}:`.padEnd(width + 1)}  ${text(value)}`).join('\n');
  const versions = table(
    ['VERSION', 'ELO', 'WIN RATE', 'PROMOTED', 'ROLLED BACK FROM'],
    model.versions.map((v) => [
      v.version,
      v.elo,
      v.win_rate,
      when(v.promoted_at),
      v.rolled_back_from ? 'yes' : '',
    ]),
  );
  return `${header}\n\n${versions}`;
}

export function formatHistory(view: HistoryView): string {
  if (view.rollbacks.length === 0) return 'No rollbacks recorded.';
  return table(
    ['WHEN', 'MODEL', 'OUTCOME', 'FROM', 'TO', 'TRIGGER', 'BY', 'REASON'],
    view.rollbacks.map((r) => [
      fromEpochSeconds(r.timestamp),
      r.model_id as Cell,
      r.outcome as Cell,
      r.from_version as Cell,
      r.to_version as Cell,
      r.triggered_by as Cell,
      r.by as Cell,
      (r.outcome === 'rollback_failed' ? `${String(r.reason)}: ${String(r.error)}` : r.reason) as Cell,
    ]),
  );
}

/** One line: what the command did, the state it left, and who was recorded as asking. */
export function formatCommandReply(command: string, target: string, reply: CommandReply): string {
  const { kind, ...details } = reply.outcome;
  const extra = Object.entries(details)
    .map(([key, value]) => `${key} ${String(value)}`)
    .join(', ');
  const by = reply.by ? `; recorded as by "${reply.by}"` : '';
  return `${command} ${target}: ${kind}${extra ? ` (${extra})` : ''}; now ${reply.state}${by}`;
}
