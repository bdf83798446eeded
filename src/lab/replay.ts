/**
 * What-if replay: the live configuration and a candidate run over the same recorded history, each through
 * the engine (src/lab/engine.ts), and their decisions compared per model and in total.
 *
 * "What was really done" is the live configuration's replay: a replay of a recorded run with the live
 * configuration reproduces the decisions the service made (rollbacks, their targets, approvals requested;
 * test/lab/record-replay.test.ts checks it against a real service), so comparing against it compares two
 * policies on exactly the same footing. Operator actions (approve, reject, manual rollback, resume) are
 * not inputs and are not replayed: a pending approval runs to its deadline in both replays.
 */
import type { Config } from '../config/schema.ts';
import {
  PolicyEngine,
  type Decision,
  type EngineShard,
  type EngineSummary,
  type ReplayIssue,
} from './engine.ts';
import { isProblem, type SourceItem } from './sources.ts';
import { lookupTable } from '../domain/model-ref.ts';

/**
 * Of a history's problems, a run keeps the first this many (in history order) and counts the rest: every
 * problem of any history a person reads is listed line by line, but a history of millions of bad lines (an
 * export whose every line has a field the schemas refuse) must not hold a report of millions of lines in
 * memory (about 60 MB at this bound).
 */
export const MAX_ISSUES_LISTED = 100_000;

export interface PolicyRun {
  readonly summary: EngineSummary;
  /** The first MAX_ISSUES_LISTED problems of the history, in its order. */
  readonly issues: ReplayIssue[];
  /** Every problem, counted by level (listed or not). */
  readonly issueCounts: IssueCounts;
  /** Lines read: inputs, and lines the source could not read (a gap is no line). */
  readonly lines: number;
}

export interface ReplayOptions {
  /** Run the clock to this time (ms) at the end, firing the timers due by then (default: the last input). */
  readonly until?: number | undefined;
  /** Hears every decision as it is made. */
  readonly onDecision?: ((decision: Decision) => void) | undefined;
  /** Run one shard of the history's models (a parallel replay, src/lab/parallel.ts); default: all. */
  readonly shard?: EngineShard | undefined;
}

export interface IssueCounts {
  readonly skipped: number;
  readonly warnings: number;
}

/** One shard's run, with the position in the history (the item's ordinal) of each of its issues. */
export interface ShardRun extends PolicyRun {
  readonly order: number[];
}

/** One configuration over a history, fed item by item. Bad lines are collected, never thrown. */
export class Replayer {
  private readonly engine: PolicyEngine;
  private readonly issues: ReplayIssue[] = [];
  private readonly order: number[] = [];
  private readonly reportsSource: boolean;
  private readonly counts = { skipped: 0, warnings: 0 };
  private lines = 0;
  private items = 0;

  constructor(
    config: Config,
    private readonly options: ReplayOptions = {},
  ) {
    this.engine = new PolicyEngine(config, options.onDecision, options.shard ?? null);
    this.reportsSource = (options.shard?.index ?? 0) === 0;
  }

  feed(item: SourceItem): void {
    const n = this.items++;
    if (isProblem(item)) {
      const level = item.level ?? 'skipped';
      if (level === 'skipped') this.lines++;
      if (this.reportsSource) this.note({ line: item.line, level, problem: item.problem }, n);
      return;
    }
    this.lines++;
    const issue = this.engine.feed(item);
    if (issue) this.note(issue, n);
  }

  private note(issue: ReplayIssue, order: number): void {
    if (issue.level === 'skipped') this.counts.skipped++;
    else this.counts.warnings++;
    if (this.issues.length >= MAX_ISSUES_LISTED) return;
    this.issues.push(issue);
    this.order.push(order);
  }

  finish(): PolicyRun {
    if (this.options.until !== undefined) this.engine.advance(this.options.until);
    return {
      summary: this.engine.summary(),
      issues: this.issues,
      issueCounts: { ...this.counts },
      lines: this.lines,
    };
  }

  finishShard(): ShardRun {
    return { ...this.finish(), order: this.order };
  }
}

/**
 * The shards of one policy's parallel replay as the one run a sequential replay gives: every shard read
 * the whole history (the same clock, counts of lines and inputs), each ran its own models and configs.
 */
export function mergeShards(shards: readonly ShardRun[]): PolicyRun {
  const first = shards[0];
  if (!first) throw new Error('mergeShards: no shard');
  const byId = (a: { modelId: string }, b: { modelId: string }) =>
    a.modelId < b.modelId ? -1 : a.modelId > b.modelId ? 1 : 0;
  const models = shards.flatMap((s) => s.summary.models).sort(byId);
  const paused = shards.flatMap((s) => Object.entries(s.summary.pausedHours));
  paused.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const tagged = shards.flatMap((s) => s.issues.map((issue, i) => ({ issue, order: s.order[i]! })));
  tagged.sort((a, b) => a.order - b.order);
  return {
    summary: {
      from: first.summary.from,
      until: first.summary.until,
      inputs: first.summary.inputs,
      applied: shards.reduce((n, s) => n + s.summary.applied, 0),
      models,
      pausedHours: lookupTable(Object.fromEntries(paused)),
    },
    // Each shard listed its first ones: the first of them all are among those.
    issues: tagged.slice(0, MAX_ISSUES_LISTED).map((t) => t.issue),
    issueCounts: {
      skipped: shards.reduce((n, s) => n + s.issueCounts.skipped, 0),
      warnings: shards.reduce((n, s) => n + s.issueCounts.warnings, 0),
    },
    lines: first.lines,
  };
}

export function replay(config: Config, items: Iterable<SourceItem>, options: ReplayOptions = {}): PolicyRun {
  const replayer = new Replayer(config, options);
  for (const item of items) replayer.feed(item);
  return replayer.finish();
}

export type FailOn = 'any' | 'added' | 'removed' | 'never';

export interface RollbackRow {
  readonly at: string;
  readonly from_version: string;
  readonly to_version: string;
  readonly trigger: string;
  readonly minutes_from_first_bad_evaluation: number | null;
}

export interface SideReport {
  readonly rollbacks: RollbackRow[];
  readonly approvals_requested: number;
  readonly regressions: number;
  /** Median minutes from the first bad evaluation to the rollback, over this side's rollbacks. */
  readonly median_minutes_to_rollback: number | null;
  readonly training_paused_hours: number;
  readonly final_state: string;
  readonly production_version: string | null;
}

export interface ModelComparison {
  readonly model_id: string;
  readonly config_key: string;
  readonly inputs: number;
  readonly live: SideReport;
  readonly candidate: SideReport;
  readonly rollbacks_added: RollbackRow[];
  readonly rollbacks_removed: RollbackRow[];
}

export interface TotalsSide {
  readonly rollbacks: number;
  readonly approvals_requested: number;
  readonly median_minutes_to_rollback: number | null;
  readonly training_paused_hours: number;
}

export interface ComparisonReport {
  readonly history: {
    readonly source: string;
    readonly inputs: number;
    readonly applied: number;
    readonly skipped: number;
    readonly warnings: number;
    readonly from: string | null;
    readonly until: string | null;
  };
  readonly models: ModelComparison[];
  readonly totals: {
    readonly live: TotalsSide;
    readonly candidate: TotalsSide;
    readonly rollbacks_added: number;
    readonly rollbacks_removed: number;
    readonly models_changed: number;
  };
  /** The first MAX_ISSUES_LISTED problems of the history; `history.skipped` and `.warnings` count them all. */
  readonly issues: ReplayIssue[];
  readonly verdict: { readonly fail_on: FailOn; readonly failed: boolean; readonly reason: string };
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function rollbackRow(r: Extract<Decision, { type: 'rollback' }>): RollbackRow {
  return {
    at: iso(r.at)!,
    from_version: r.fromVersion,
    to_version: r.toVersion,
    trigger: r.trigger,
    minutes_from_first_bad_evaluation:
      r.msFromFirstBadEvaluation === null ? null : round(r.msFromFirstBadEvaluation / 60_000),
  };
}

function side(summary: EngineSummary, modelId: string): SideReport {
  const m = summary.models.find((x) => x.modelId === modelId);
  if (!m) {
    return {
      rollbacks: [],
      approvals_requested: 0,
      regressions: 0,
      median_minutes_to_rollback: null,
      training_paused_hours: 0,
      final_state: 'unknown',
      production_version: null,
    };
  }
  const delays = m.rollbacks.flatMap((r) =>
    r.msFromFirstBadEvaluation === null ? [] : [r.msFromFirstBadEvaluation / 60_000],
  );
  const med = median(delays);
  return {
    rollbacks: m.rollbacks.map(rollbackRow),
    approvals_requested: m.approvals.length,
    regressions: m.regressions,
    median_minutes_to_rollback: med === null ? null : round(med),
    training_paused_hours: round(summary.pausedHours[m.configKey] ?? 0),
    final_state: m.state,
    production_version: m.productionVersion,
  };
}

/** Rollbacks are matched by their versions (from -> to), as many times as each side made them. */
function difference(a: RollbackRow[], b: RollbackRow[]): RollbackRow[] {
  const left = [...b];
  return a.filter((row) => {
    const i = left.findIndex((r) => r.from_version === row.from_version && r.to_version === row.to_version);
    if (i < 0) return true;
    left.splice(i, 1);
    return false;
  });
}

function totals(summary: EngineSummary): TotalsSide {
  const delays = summary.models.flatMap((m) =>
    m.rollbacks.flatMap((r) =>
      r.msFromFirstBadEvaluation === null ? [] : [r.msFromFirstBadEvaluation / 60_000],
    ),
  );
  const med = median(delays);
  return {
    rollbacks: summary.models.reduce((n, m) => n + m.rollbacks.length, 0),
    approvals_requested: summary.models.reduce((n, m) => n + m.approvals.length, 0),
    median_minutes_to_rollback: med === null ? null : round(med),
    training_paused_hours: round(Object.values(summary.pausedHours).reduce((a, b) => a + b, 0)),
  };
}

/** The two runs side by side, and whether the difference fails the gate. */
export function compareRuns(
  live: PolicyRun,
  candidate: PolicyRun,
  options: { source: string; failOn?: FailOn },
): ComparisonReport {
  const failOn = options.failOn ?? 'any';
  const ids = [
    ...new Set([...live.summary.models, ...candidate.summary.models].map((m) => m.modelId)),
  ].sort();
  const models = ids.map((id): ModelComparison => {
    const l = side(live.summary, id);
    const c = side(candidate.summary, id);
    const m =
      candidate.summary.models.find((x) => x.modelId === id) ??
      live.summary.models.find((x) => x.modelId === id)!;
    return {
      model_id: id,
      config_key: m.configKey,
      inputs: m.inputs,
      live: l,
      candidate: c,
      rollbacks_added: difference(c.rollbacks, l.rollbacks),
      rollbacks_removed: difference(l.rollbacks, c.rollbacks),
    };
  });
  const added = models.reduce((n, m) => n + m.rollbacks_added.length, 0);
  const removed = models.reduce((n, m) => n + m.rollbacks_removed.length, 0);
  const failed =
    (failOn === 'any' && added + removed > 0) ||
    (failOn === 'added' && added > 0) ||
    (failOn === 'removed' && removed > 0);
  const reason =
    added + removed === 0
      ? 'the candidate makes the same rollbacks as the live configuration'
      : `the candidate adds ${added} rollback(s) and removes ${removed}` +
        (failed ? ` (--fail-on ${failOn})` : ` (allowed by --fail-on ${failOn})`);
  const issues = [...candidate.issues].sort((a, b) => a.line - b.line);
  return {
    history: {
      source: options.source,
      inputs: candidate.lines,
      applied: candidate.summary.applied,
      skipped: candidate.issueCounts.skipped,
      warnings: candidate.issueCounts.warnings,
      from: iso(candidate.summary.from),
      until: iso(candidate.summary.until),
    },
    models,
    totals: {
      live: totals(live.summary),
      candidate: totals(candidate.summary),
      rollbacks_added: added,
      rollbacks_removed: removed,
      models_changed: models.filter((m) => m.rollbacks_added.length + m.rollbacks_removed.length > 0).length,
    },
    issues,
    verdict: { fail_on: failOn, failed, reason },
  };
}

/**
 * The live configuration and the candidate over the same history (read once), compared. Problems of the
 * history are the same for both and reported once.
 */
export function whatIf(
  live: Config,
  candidate: Config,
  items: Iterable<SourceItem>,
  options: { source: string; failOn?: FailOn; until?: number | undefined },
): ComparisonReport {
  // Side by side, in one pass: the history is read once and never held in memory as a whole.
  const liveRun = new Replayer(live, { until: options.until });
  const candidateRun = new Replayer(candidate, { until: options.until });
  for (const item of items) {
    liveRun.feed(item);
    candidateRun.feed(item);
  }
  return compareRuns(liveRun.finish(), candidateRun.finish(), options);
}

/**
 * The same comparison for a running service (the HTTP replay job): both policies are fed side by side,
 * and the event loop gets a turn every `yieldEvery` inputs, so that the live service keeps answering.
 */
export async function whatIfAsync(
  live: Config,
  candidate: Config,
  items: Iterable<SourceItem>,
  options: {
    source: string;
    failOn?: FailOn;
    until?: number | undefined;
    yieldEvery?: number;
    onProgress?: (lines: number) => void;
  },
): Promise<ComparisonReport> {
  const liveRun = new Replayer(live, { until: options.until });
  const candidateRun = new Replayer(candidate, { until: options.until });
  const every = options.yieldEvery ?? 2000;
  let n = 0;
  for (const item of items) {
    liveRun.feed(item);
    candidateRun.feed(item);
    if (++n % every === 0) {
      options.onProgress?.(n);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  options.onProgress?.(n);
  return compareRuns(liveRun.finish(), candidateRun.finish(), options);
}
