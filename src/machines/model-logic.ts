/**
 * The model actor's policy as small pure functions, bound by name in model-machine.ts: the judgement of an
 * input (which row of the decision table it falls in, computed once per event and shared by every guard),
 * and the actions that carry a decision out (record the evidence, announce the regression, request an
 * approval, start the rollback, ...). Each action takes a Draft of the context and adds to it; the
 * publications get deterministic ids from the context's counter, so a replay republishes the same ids.
 */
import { classify, recommendedAction } from '../policy/classify.ts';
import { decide, escalate, type Decision } from '../policy/decide.ts';
import { severityRank, type Severity } from '../policy/severity.ts';
import type { AlertDetails, AlertKind, OutputEvent, RollbackTrigger, Statistics } from '../domain/events.ts';
import {
  DEFERRED_INPUT_LIMIT,
  EVIDENCE_LIMIT,
  LINEAGE_LIMIT,
  RECENT_INPUT_LIMIT,
  type ModelPolicy,
} from './model-policy.ts';
import { rememberedId } from './remembered-id.ts';
import type {
  DeferredInput,
  Detection,
  HeldBecause,
  ModelContext,
  ModelEvent,
  ModelStateName,
  Outcome,
  PendingApproval,
  RollbackPlan,
} from './model-types.ts';
import { assessWithDetector, judgedStatistically } from './detector.ts';

export function initialModelContext(modelId: string, configKey: string): ModelContext {
  return {
    modelId,
    configKey,
    productionVersion: null,
    baseline: { elo: null, winRate: null },
    lineage: [],
    streak: 0,
    lastDetection: null,
    announcedSeverity: null,
    cooldownUntil: null,
    pending: null,
    rollback: null,
    lastRollback: null,
    autoRollbacks: [],
    sprt: null,
    recentInputIds: [],
    seq: 0,
  };
}

/** Publications of a draft that emitted none (shared: never written to). */
const NO_PUBLICATIONS: OutputEvent[] = [];

/**
 * Builds one transition's context and publications, with deterministic ids, and its answer to the caller.
 * The first `set` or `nextId` copies the context; later ones change that copy in place (nobody else holds
 * it until the action hands it to XState), so an action that sets several fields copies the context once.
 */
export class Draft {
  private current: ModelContext;
  /** Whether `current` is this draft's own copy (safe to change in place). */
  private owned = false;
  publish: OutputEvent[] = NO_PUBLICATIONS;
  outcome: Outcome | undefined;

  /** `metadata`: the input's own (run ids, hosts), carried into every event it causes. */
  constructor(
    context: ModelContext,
    private readonly metadata?: Readonly<Record<string, string>>,
  ) {
    this.current = context;
  }

  get context(): ModelContext {
    return this.current;
  }

  /** A context built elsewhere: it may be shared, so the next change copies it again. */
  set context(context: ModelContext) {
    this.current = context;
    this.owned = false;
  }

  private own(): { -readonly [K in keyof ModelContext]: ModelContext[K] } {
    if (!this.owned) {
      this.current = { ...this.current };
      this.owned = true;
    }
    return this.current;
  }

  nextId(prefix: string): string {
    const own = this.own();
    own.seq += 1;
    return `${own.modelId}.${prefix}${own.seq}`;
  }

  emit(build: (eventId: string) => OutputEvent): void {
    const event = build(this.nextId('e'));
    if (this.publish === NO_PUBLICATIONS) this.publish = [];
    this.publish.push(
      this.metadata === undefined
        ? event
        : ({ ...event, payload: { ...event.payload, metadata: this.metadata } } as OutputEvent),
    );
  }

  set(patch: Partial<ModelContext>): void {
    Object.assign(this.own(), patch);
  }

  answer(outcome: Outcome): void {
    this.outcome = outcome;
  }
}

const seconds = (ms: number): number => ms / 1000;

/**
 * `ids` with `id` appended, the oldest dropped beyond `limit`. A native `slice` and one `push` copy the
 * window faster than an element-by-element loop (about 1.5x for a window of 64, scratch measurement).
 */
function appendBounded(ids: readonly string[], id: string, limit: number): string[] {
  const next = ids.slice(ids.length >= limit ? ids.length - limit + 1 : 0);
  next.push(id);
  return next;
}

function rememberInput(context: ModelContext, inputId: string | undefined): ModelContext {
  if (inputId === undefined) return context;
  const recentInputIds = appendBounded(context.recentInputIds, rememberedId(inputId), RECENT_INPUT_LIMIT);
  return { ...context, recentInputIds };
}

const NO_DEFERRED: readonly DeferredInput[] = Object.freeze([]);

/** The inputs waiting for a rollback to end (snapshots from before deferral have none). */
export function deferredOf(context: ModelContext): readonly DeferredInput[] {
  return context.deferred ?? NO_DEFERRED;
}

type Input = Extract<ModelEvent, { type: 'PROMOTED' | 'EVALUATED' }>;

/** The version the inputs already waiting leave in production: the last waiting promotion's, if any. */
function versionAfterWaiting(context: ModelContext): string | null {
  const waiting = deferredOf(context);
  for (let i = waiting.length - 1; i >= 0; i--) {
    const e = waiting[i]!.event;
    if (e.type === 'PROMOTED') return e.version;
  }
  return context.productionVersion;
}

/**
 * The last known-good version: the most recent earlier promoted version that Warden never rolled back
 * from and that is not the current one. (The seed took the newest archived version, which is usually the
 * one just rolled back from, and ping-ponged.)
 */
export function lastKnownGood(context: ModelContext): string | null {
  for (let i = context.lineage.length - 1; i >= 0; i--) {
    const entry = context.lineage[i]!;
    if (entry.version !== context.productionVersion && !entry.rolledBackFrom) return entry.version;
  }
  return null;
}

function triggerFor(severity: Severity, forced: boolean, sprt: boolean): RollbackTrigger {
  if (severity === 'critical') return 'auto_regression_critical';
  if (sprt) return 'auto_regression_sprt';
  if (severity === 'severe') return 'auto_regression_severe';
  if (forced) return 'auto_regression_forced';
  return 'auto_regression_moderate';
}

function recentAutoRollbacks(context: ModelContext, at: number, policy: ModelPolicy): number[] {
  return context.autoRollbacks.filter((t) => t > at - policy.autoRollbackLimit.windowMs);
}

// -------------------------------------------------------------------------------------------------
// Publications

/** Why a manual rollback to `toVersion` cannot start, or null when it can. */
export function manualRollbackProblem(context: ModelContext, toVersion: string | undefined): string | null {
  if (context.productionVersion === null) return `model ${context.modelId} has no production version`;
  if (toVersion === undefined) {
    return lastKnownGood(context) === null ? 'no earlier known-good version to roll back to' : null;
  }
  if (toVersion === context.productionVersion) return `version ${toVersion} is already in production`;
  if (!context.lineage.some((e) => e.version === toVersion)) {
    const known = context.lineage.map((e) => e.version).join(', ');
    return `expected one of the promoted versions (${known}), received "${toVersion}"`;
  }
  return null;
}

/** When the cooldown of a rolled-back model may end: its deadline, and not before the pause had its grace. */
export function cooldownDeadline(
  state: ModelStateName,
  context: ModelContext,
  policy: ModelPolicy,
): number | null {
  if (context.cooldownUntil === null) return null;
  if (state === 'rolledBack' && context.lastRollback) {
    return Math.max(context.cooldownUntil, context.lastRollback.completedAt + policy.pauseAckGraceMs);
  }
  return context.cooldownUntil;
}

function alert(
  draft: Draft,
  at: number,
  level: 'critical' | 'warning',
  kind: AlertKind,
  message: string,
  details?: AlertDetails,
): void {
  const { modelId, configKey } = draft.context;
  draft.emit((event_id) => ({
    type: 'ALERT',
    payload: {
      event_id,
      timestamp: seconds(at),
      model_id: modelId,
      config_key: configKey,
      level,
      kind,
      message,
      ...(details ? { details } : {}),
    },
  }));
}

interface FailedRollback {
  readonly rollbackId: string | null;
  readonly detectionId: string | null;
  readonly fromVersion: string | null;
  readonly toVersion: string | null;
  readonly trigger: RollbackTrigger;
  readonly by: string;
  readonly reason: string;
}

function rollbackFailed(draft: Draft, at: number, plan: FailedRollback, error: string): void {
  const { modelId, configKey } = draft.context;
  draft.emit((event_id) => ({
    type: 'ROLLBACK_FAILED',
    payload: {
      event_id,
      timestamp: seconds(at),
      rollback_id: plan.rollbackId,
      detection_id: plan.detectionId,
      model_id: modelId,
      config_key: configKey,
      from_version: plan.fromVersion,
      to_version: plan.toVersion,
      triggered_by: plan.trigger,
      by: plan.by,
      reason: plan.reason,
      error,
    },
  }));
  alert(draft, at, 'critical', 'rollback_failed', `Rollback of ${modelId} failed: ${error}`);
}

interface Assessment {
  readonly severity: Severity | null;
  readonly decision: Decision;
  readonly trigger: RollbackTrigger;
  readonly eloDrop: number | null;
  readonly winRateDrop: number | null;
  readonly errorRate: number | null;
  readonly reason: string;
  readonly statistics: Statistics;
  readonly sprt: ModelContext['sprt'];
}

function assess(
  context: ModelContext,
  event: Extract<ModelEvent, { type: 'EVALUATED' }>,
  policy: ModelPolicy,
): Assessment {
  // Each baseline metric falls back to the stored one on its own (the seed dropped the stored win rate
  // whenever the caller passed baseline_elo).
  // Built field by field: an object spread here was the hottest line of the evaluation path.
  const metrics = {
    currentElo: event.metrics.currentElo,
    baselineElo: event.metrics.baselineElo ?? context.baseline.elo ?? undefined,
    currentWinRate: event.metrics.currentWinRate,
    baselineWinRate: event.metrics.baselineWinRate ?? context.baseline.winRate ?? undefined,
    errorRate: event.metrics.errorRate,
  };
  const detected = assessWithDetector({
    modelId: context.modelId,
    metrics,
    outcomes: event.outcomes,
    gamesPlayed: event.gamesPlayed,
    sprt: context.sprt,
    policy,
    at: event.at,
  });
  if (detected.kind === 'statistical') {
    const { severity } = detected;
    return {
      severity,
      decision: detected.decision,
      trigger:
        severity === 'critical'
          ? 'auto_regression_critical'
          : detected.sprtAccepted
            ? 'auto_regression_sprt'
            : 'auto_regression_severe',
      eloDrop: detected.eloDrop,
      winRateDrop: detected.winRateDrop,
      errorRate: detected.errorRate,
      reason: detected.reason,
      statistics: detected.statistics,
      sprt: detected.sprt,
    };
  }
  const classification = classify(metrics, policy.detection);
  const { eloDrop, winRateDrop, errorRate } = classification;
  if (classification.severity === null) {
    return {
      severity: null,
      eloDrop,
      winRateDrop,
      errorRate,
      reason: classification.reason,
      decision: 'watch',
      trigger: 'auto_regression_moderate',
      statistics: null,
      sprt: context.sprt,
    };
  }
  const escalation = escalate(classification.severity, context.streak + 1, policy.detection);
  const reason =
    context.streak + 1 > 1
      ? `${classification.reason}; consecutive regression #${context.streak + 1}`
      : classification.reason;
  return {
    eloDrop,
    winRateDrop,
    errorRate,
    severity: escalation.severity,
    decision: decide(escalation, classification.eloDrop, policy.detection),
    trigger: triggerFor(escalation.severity, escalation.forced, false),
    reason,
    statistics: null,
    sprt: context.sprt,
  };
}

function announce(
  draft: Draft,
  event: Extract<ModelEvent, { type: 'EVALUATED' }>,
  a: Assessment & { severity: Severity },
  detection: Detection,
  decision: Decision,
): void {
  const { modelId, configKey, productionVersion, baseline } = draft.context;
  const base = {
    timestamp: seconds(event.at),
    detection_id: detection.detectionId,
    model_id: modelId,
    version: productionVersion!,
    config_key: configKey,
    severity: a.severity,
    current_elo: event.metrics.currentElo ?? null,
    baseline_elo: event.metrics.baselineElo ?? baseline.elo,
    elo_drop: a.eloDrop,
    current_win_rate: event.metrics.currentWinRate ?? null,
    baseline_win_rate: event.metrics.baselineWinRate ?? baseline.winRate,
    win_rate_drop: a.winRateDrop,
    error_rate: a.errorRate,
    games_played: event.gamesPlayed,
    consecutive_count: draft.context.streak,
    reason: a.reason,
    recommended_action: recommendedAction(a.severity),
    decision,
    statistics: a.statistics,
  };
  draft.emit((event_id) => ({ type: 'REGRESSION_DETECTED', payload: { ...base, event_id } }));
  const specific = `REGRESSION_${a.severity.toUpperCase()}` as
    'REGRESSION_MINOR' | 'REGRESSION_MODERATE' | 'REGRESSION_SEVERE' | 'REGRESSION_CRITICAL';
  draft.emit((event_id) => ({ type: specific, payload: { ...base, event_id } }));
  if (a.severity === 'critical') {
    alert(
      draft,
      event.at,
      'critical',
      'critical_regression',
      `CRITICAL regression of ${modelId} ${productionVersion}: ${a.reason}`,
    );
  }
}

// -------------------------------------------------------------------------------------------------
// Judgements: which rule of the policy an input falls under, decided once per event

/** Why an input is not taken now, or `admitted`. */
export type AdmissionRule = 'handBackOutOfTurn' | 'duplicate' | 'queueFull' | 'waitForRollback' | 'admitted';

export interface Admission {
  readonly rule: AdmissionRule;
  /** The context to go on with: a handed-back input is off the queue. */
  readonly context: ModelContext;
}

/**
 * The gate every input passes first. A redelivered input is a duplicate. While a rollback is in flight an
 * input is kept with the state, and so is every input behind one already kept (order per model); the
 * runtime hands them back, oldest first, once the rollback has ended.
 */
export function admitInput(state: ModelStateName, context: ModelContext, event: Input): Admission {
  const waiting = deferredOf(context);
  if (event.deferredId !== undefined) {
    if (state === 'rollingBack' || waiting[0]?.id !== event.deferredId)
      return { rule: 'handBackOutOfTurn', context };
    return { rule: 'admitted', context: { ...context, deferred: waiting.slice(1) } };
  }
  if (event.inputId !== undefined && context.recentInputIds.includes(rememberedId(event.inputId))) {
    return { rule: 'duplicate', context };
  }
  if (state !== 'rollingBack' && waiting.length === 0) return { rule: 'admitted', context };
  return { rule: waiting.length >= DEFERRED_INPUT_LIMIT ? 'queueFull' : 'waitForRollback', context };
}

/** The rows of the README's decision table, in its order of precedence. */
export type EvaluationRule =
  | Exclude<AdmissionRule, 'admitted'>
  | 'otherVersion'
  | 'tooFewGames'
  | 'criticalWhileAwaitingApproval'
  | 'evidenceForApproval'
  | 'clean'
  | 'repeatWithinCooldown'
  | 'watch'
  | 'noRollbackTarget'
  | 'heldByCooldown'
  | 'heldByRateLimit'
  | 'needsApproval'
  | 'critical'
  | 'rollback';

export interface EvaluationJudgement {
  readonly rule: EvaluationRule;
  /** The context after admission (what every action starts from). */
  readonly admitted: ModelContext;
  readonly assessment: Assessment | null;
  /** The decision after the safety brakes (a cooldown or the rate limit hold a rollback for an operator). */
  readonly decision: Decision;
  readonly heldBecause: HeldBecause | null;
  /** Inside a cooldown a repeat of the same or a milder severity is not announced again. */
  readonly announced: boolean;
  readonly quiet: boolean;
}

type Evaluated = Extract<ModelEvent, { type: 'EVALUATED' }>;

/** An evaluation in one state: which rule it falls under, with the assessment behind it. Pure. */
export function judgeEvaluation(
  state: ModelStateName,
  context: ModelContext,
  event: Evaluated,
  policy: ModelPolicy,
): EvaluationJudgement {
  const quiet = state === 'cooldown' || state === 'rolledBack';
  const admission = admitInput(state, context, event);
  const c = admission.context;
  if (admission.rule !== 'admitted') return verdict(admission.rule, c, quiet);
  if (event.version !== undefined && event.version !== c.productionVersion)
    return verdict('otherVersion', c, quiet);
  if (
    event.gamesPlayed < policy.detection.minGames &&
    !judgedStatistically(c.modelId, event.outcomes, policy)
  ) {
    // minGames gates the threshold rule's single-window judgement only: in statistical mode every window
    // with game outcomes counts toward the running test, however small.
    return verdict('tooFewGames', c, quiet);
  }
  const assessment = assess(c, event, policy);
  const { severity } = assessment;
  if (state === 'awaitingApproval') {
    // CRITICAL evidence rolls back now, unless the request was held by a safety brake.
    const critical = severity === 'critical' && c.pending!.heldBecause === 'approval_required';
    return verdict(
      critical ? 'criticalWhileAwaitingApproval' : 'evidenceForApproval',
      c,
      quiet,
      assessment,
      critical ? 'rollback' : 'watch',
    );
  }
  if (severity === null) return verdict('clean', c, quiet, assessment);
  const announced = !(quiet && severityRank(severity) <= severityRank(c.announcedSeverity));
  let decision = assessment.decision;
  let heldBecause: HeldBecause | null = decision === 'await_approval' ? 'approval_required' : null;
  if (decision === 'rollback' && quiet) {
    decision = 'await_approval';
    heldBecause = 'cooldown';
  } else if (
    decision === 'rollback' &&
    recentAutoRollbacks(c, event.at, policy).length >= policy.autoRollbackLimit.max
  ) {
    decision = 'await_approval';
    heldBecause = 'rate_limit';
  }
  // A regression (rare): the rows below share the assessment and the brakes.
  const ruled = (rule: EvaluationRule) =>
    verdict(rule, c, quiet, assessment, decision, heldBecause, announced);
  if (decision === 'watch') return ruled(announced ? 'watch' : 'repeatWithinCooldown');
  if (lastKnownGood(c) === null) return ruled('noRollbackTarget');
  if (heldBecause === 'cooldown') return ruled('heldByCooldown');
  if (heldBecause === 'rate_limit') return ruled('heldByRateLimit');
  if (decision === 'await_approval') return ruled('needsApproval');
  return ruled(severity === 'critical' ? 'critical' : 'rollback');
}

/** One judgement, built field by field (a closure and a spread per event were on the hot path). */
function verdict(
  rule: EvaluationRule,
  admitted: ModelContext,
  quiet: boolean,
  assessment: Assessment | null = null,
  decision: Decision = 'watch',
  heldBecause: HeldBecause | null = null,
  announced = true,
): EvaluationJudgement {
  return { rule, admitted, assessment, decision, heldBecause, announced, quiet };
}

// -------------------------------------------------------------------------------------------------
// Actions: each does one thing to the draft of the next context

/** Keeps an input until the rollback in flight has ended (the runtime hands it back then). */
export function keepUntilRollbackEnds(d: Draft, state: ModelStateName, event: Input): void {
  const waiting = deferredOf(d.context);
  // Numbered within the queue, not from the event counter: the ids of the events this model publishes do
  // not depend on whether an input happened to arrive during a rollback.
  const id = (waiting.at(-1)?.id ?? 0) + 1;
  // An evaluation that names no version is one of the version in production when it arrived (or of a
  // promotion kept before it), never of the version rolled back to.
  const kept: Input =
    event.type === 'EVALUATED' && event.version === undefined
      ? { ...event, version: versionAfterWaiting(d.context) ?? undefined, inputId: undefined }
      : { ...event, inputId: undefined };
  d.context = { ...rememberInput(d.context, event.inputId), deferred: [...waiting, { id, event: kept }] };
  d.answer({ kind: 'deferred', state, waiting: waiting.length + 1 });
}

export function answerInputNotTaken(
  d: Draft,
  state: ModelStateName,
  event: Input,
  rule: AdmissionRule,
): void {
  if (rule === 'duplicate') d.answer({ kind: 'duplicate', inputId: event.inputId! });
  else if (rule === 'queueFull') d.answer({ kind: 'busy', state, waiting: deferredOf(d.context).length });
  else d.answer({ kind: 'stale', reason: `deferred input ${event.deferredId} is not next` });
}

/** A new production version, with the baseline it was promoted with; a new promotion supersedes a request. */
export function takePromotion(
  d: Draft,
  admitted: ModelContext,
  event: Extract<ModelEvent, { type: 'PROMOTED' }>,
): void {
  const entry = {
    version: event.version,
    elo: event.elo ?? null,
    winRate: event.winRate ?? null,
    promotedAt: event.at,
    rolledBackFrom: false,
  };
  const previous = admitted.lineage.find((e) => e.version === event.version);
  // A re-promotion keeps the version's history: once rolled back from, never a target again.
  const lineage = [
    ...admitted.lineage.filter((e) => e.version !== event.version),
    { ...entry, rolledBackFrom: previous?.rolledBackFrom ?? false },
  ].slice(-LINEAGE_LIMIT);
  d.context = {
    ...rememberInput(admitted, event.inputId),
    productionVersion: event.version,
    baseline: { elo: entry.elo, winRate: entry.winRate },
    lineage,
    streak: 0,
    lastDetection: null,
    announcedSeverity: null,
    cooldownUntil: null,
    pending: null,
    sprt: null,
  };
  d.answer({ kind: 'promoted', version: event.version });
}

export function ignoreOtherVersion(d: Draft, event: Evaluated): void {
  d.answer({
    kind: 'ignored_version',
    version: event.version!,
    productionVersion: d.context.productionVersion,
  });
}

export function recordInsufficientEvidence(d: Draft, event: Evaluated, policy: ModelPolicy): void {
  d.answer({
    kind: 'insufficient_evidence',
    gamesPlayed: event.gamesPlayed,
    minGames: policy.detection.minGames,
  });
}

/** The evaluation is taken: its id is remembered and its window joins the running statistical test. */
export function takeEvaluation(d: Draft, j: EvaluationJudgement, event: Evaluated): void {
  const remembered = rememberInput(j.admitted, event.inputId);
  const sprt = j.assessment!.sprt;
  d.context = sprt === j.admitted.sprt ? remembered : { ...remembered, sprt };
}

/** A clean evaluation ends an open streak of regressions, and says so. */
export function clearRegression(d: Draft, j: EvaluationJudgement, event: Evaluated): void {
  // A statistical test that ended in accept_h0: the version passed it (the timeline records it).
  const statistics = j.assessment?.statistics;
  const passed =
    statistics?.sprt_decision === 'accept_h0' && statistics.test_number !== null
      ? { passedTest: statistics.test_number }
      : {};
  if (d.context.streak === 0) {
    d.answer({ kind: 'healthy', ...passed });
    return;
  }
  d.set({ streak: 0 });
  const { modelId, configKey, productionVersion, baseline, lastDetection } = d.context;
  const current = event.metrics.currentElo ?? null;
  d.emit((event_id) => ({
    type: 'REGRESSION_CLEARED',
    payload: {
      event_id,
      timestamp: seconds(event.at),
      model_id: modelId,
      version: productionVersion!,
      config_key: configKey,
      elo_recovered:
        current !== null && lastDetection?.currentElo != null ? current - lastDetection.currentElo : null,
      current_elo: current,
      baseline_elo: event.metrics.baselineElo ?? baseline.elo,
      metric_name: 'elo',
      reason: 'consecutive_regressions_cleared',
    },
  }));
  d.answer({ kind: 'cleared', ...passed });
}

/** One more regression in the streak, with its detection id; remembered as the last detection. */
export function recordDetection(
  d: Draft,
  j: EvaluationJudgement,
  event: Evaluated,
  answer: boolean,
): Detection {
  const a = j.assessment!;
  const severity = a.severity!;
  d.set({ streak: d.context.streak + 1 });
  const detection: Detection = {
    detectionId: d.nextId('d'),
    severity,
    at: event.at,
    currentElo: event.metrics.currentElo ?? null,
    reason: a.reason,
  };
  d.set({
    lastDetection: detection,
    announcedSeverity: j.quiet && j.announced ? severity : d.context.announcedSeverity,
  });
  if (answer) {
    d.answer({
      kind: 'regression',
      severity,
      decision: j.decision,
      detectionId: detection.detectionId,
      announced: j.announced,
    });
  }
  return detection;
}

export function announceRegression(d: Draft, j: EvaluationJudgement, event: Evaluated): void {
  announce(
    d,
    event,
    { ...j.assessment!, severity: j.assessment!.severity! },
    d.context.lastDetection!,
    j.decision,
  );
}

/** Evidence that arrives while an approval is pending is collected with it, never a second request. */
export function addApprovalEvidence(d: Draft, j: EvaluationJudgement, event: Evaluated): void {
  const a = j.assessment!;
  if (a.severity !== null) {
    // Counted in the streak (and its detection id spent), but the pending request stays the one.
    d.set({ streak: d.context.streak + 1 });
    d.nextId('d');
  }
  const pending = d.context.pending!;
  const evidence = [
    ...pending.evidence,
    { at: event.at, severity: a.severity, reason: a.reason, gamesPlayed: event.gamesPlayed },
  ].slice(-EVIDENCE_LIMIT);
  const severity = severityRank(a.severity) > severityRank(pending.severity) ? a.severity! : pending.severity;
  d.set({ pending: { ...pending, evidence, severity } });
  d.answer({ kind: 'evidence_added', detectionId: pending.detectionId });
}

export function requestApproval(d: Draft, j: EvaluationJudgement, at: number, policy: ModelPolicy): void {
  const detection = d.context.lastDetection!;
  const heldBecause = j.heldBecause!;
  const toVersion = lastKnownGood(d.context)!;
  const pending: PendingApproval = {
    detectionId: detection.detectionId,
    severity: detection.severity,
    reason: detection.reason,
    heldBecause,
    requestedAt: at,
    deadline: at + policy.approvalTimeoutMs,
    toVersion,
    evidence: [],
  };
  d.set({ pending });
  const { modelId, configKey, productionVersion } = d.context;
  d.emit((event_id) => ({
    type: 'ROLLBACK_APPROVAL_REQUESTED',
    payload: {
      event_id,
      timestamp: seconds(at),
      detection_id: detection.detectionId,
      model_id: modelId,
      version: productionVersion!,
      config_key: configKey,
      severity: detection.severity,
      reason: detection.reason,
      held_because: heldBecause,
      deadline: seconds(pending.deadline),
      on_timeout: policy.onApprovalTimeout,
      to_version: toVersion,
    },
  }));
  // Someone must answer before the deadline: page them with what they need to decide.
  alert(
    d,
    at,
    'critical',
    'approval_requested',
    `${modelId} ${productionVersion}: ${detection.severity.toUpperCase()} regression held for approval (${heldBecause}): ${detection.reason}. Approve or reject within ${seconds(pending.deadline - at)} s; then: ${policy.onApprovalTimeout}${toVersion ? ` to ${toVersion}` : ''}`,
    {
      detection_id: detection.detectionId,
      version: productionVersion,
      severity: detection.severity,
      current_elo: detection.currentElo,
      reason: detection.reason,
      held_because: heldBecause,
      deadline: seconds(pending.deadline),
      on_timeout: policy.onApprovalTimeout,
      to_version: toVersion,
    },
  );
  if (heldBecause === 'rate_limit') {
    alert(
      d,
      at,
      'warning',
      'rate_limited',
      `${modelId} reached ${policy.autoRollbackLimit.max} automatic rollbacks in ${policy.autoRollbackLimit.windowMs / 3_600_000} h: an operator decides`,
    );
  }
}

/** No earlier known-good version: the rollback fails at once, loudly. */
export function reportNoRollbackTarget(
  d: Draft,
  j: EvaluationJudgement,
  event: Evaluated,
  admitted: ModelContext,
): void {
  rollbackFailed(
    d,
    event.at,
    {
      rollbackId: null,
      detectionId: d.context.lastDetection!.detectionId,
      fromVersion: admitted.productionVersion!,
      toVersion: null,
      trigger: j.assessment!.trigger,
      by: 'warden',
      reason: j.assessment!.reason,
    },
    'no earlier known-good version to roll back to',
  );
}

/** Puts the plan in the context (the runtime applies it to the registry) and answers with its id. */
export function beginRollback(
  d: Draft,
  at: number,
  spec: Omit<RollbackPlan, 'rollbackId' | 'startedAt' | 'fromVersion'>,
  answer: boolean,
): void {
  const plan: RollbackPlan = {
    ...spec,
    rollbackId: d.nextId('r'),
    fromVersion: d.context.productionVersion!,
    startedAt: at,
  };
  d.set({ rollback: plan, pending: null });
  if (answer) d.answer({ kind: 'rollback_started', rollbackId: plan.rollbackId, toVersion: plan.toVersion });
}

export function startAutomaticRollback(d: Draft, j: EvaluationJudgement, event: Evaluated): void {
  const a = j.assessment!;
  beginRollback(
    d,
    event.at,
    {
      detectionId: d.context.lastDetection!.detectionId,
      toVersion: lastKnownGood(d.context)!,
      trigger: a.trigger,
      by: 'warden',
      reason:
        a.trigger === 'auto_regression_sprt'
          ? `Auto-rollback: the SPRT accepted a regression - ${a.reason}`
          : `Auto-rollback: ${a.severity!.toUpperCase()} regression - ${a.reason}`,
      severity: a.severity,
    },
    false,
  );
}

export function startCriticalRollback(d: Draft, j: EvaluationJudgement, event: Evaluated): void {
  beginRollback(
    d,
    event.at,
    {
      detectionId: d.context.lastDetection!.detectionId,
      toVersion: d.context.pending!.toVersion,
      trigger: 'auto_regression_critical',
      by: 'warden',
      reason: `Auto-rollback: CRITICAL regression while awaiting approval - ${j.assessment!.reason}`,
      severity: 'critical',
    },
    true,
  );
}

export function startApprovedRollback(d: Draft, event: Extract<ModelEvent, { type: 'APPROVE' }>): void {
  const pending = d.context.pending!;
  beginRollback(
    d,
    event.at,
    {
      detectionId: pending.detectionId,
      toVersion: pending.toVersion,
      trigger: 'auto_regression_approved',
      by: event.by,
      reason: `Approved rollback: ${pending.reason}${event.note ? ` (${event.note})` : ''}`,
      severity: pending.severity,
    },
    true,
  );
}

/** The operator accepts the current version: the streak starts over. */
export function rejectApproval(d: Draft): void {
  d.set({ pending: null, streak: 0 });
  d.answer({ kind: 'rejected' });
}

export function alertApprovalExpired(d: Draft, at: number, policy: ModelPolicy): void {
  alert(
    d,
    at,
    'warning',
    'approval_expired',
    `Approval for ${d.context.modelId} expired after ${policy.approvalTimeoutMs / 1000} s: ${policy.onApprovalTimeout}`,
  );
}

export function startRollbackOnExpiry(d: Draft, at: number, policy: ModelPolicy): void {
  const pending = d.context.pending!;
  beginRollback(
    d,
    at,
    {
      detectionId: pending.detectionId,
      toVersion: pending.toVersion,
      trigger: 'approval_expired',
      by: 'warden',
      reason: `Approval timed out after ${policy.approvalTimeoutMs / 1000} s: ${pending.reason}`,
      severity: pending.severity,
    },
    true,
  );
}

export function reportRollbackRefused(
  d: Draft,
  event: Extract<ModelEvent, { type: 'ROLLBACK_REQUESTED' }>,
): void {
  const problem = manualRollbackProblem(d.context, event.toVersion)!;
  rollbackFailed(
    d,
    event.at,
    {
      rollbackId: null,
      detectionId: null,
      fromVersion: d.context.productionVersion,
      toVersion: event.toVersion ?? null,
      trigger: 'manual',
      by: event.by,
      reason: event.reason,
    },
    problem,
  );
  d.answer({ kind: 'rollback_refused', error: problem });
}

export function startManualRollback(
  d: Draft,
  event: Extract<ModelEvent, { type: 'ROLLBACK_REQUESTED' }>,
): void {
  beginRollback(
    d,
    event.at,
    {
      detectionId: d.context.pending?.detectionId ?? null,
      toVersion: event.toVersion ?? lastKnownGood(d.context)!,
      trigger: 'manual',
      by: event.by,
      reason: event.reason,
      severity: null,
    },
    true,
  );
}

/** The registry applied the rollback: production moves back, the cooldown starts, training must pause. */
export function completeRollback(
  d: Draft,
  event: Extract<ModelEvent, { type: 'ROLLBACK_SUCCEEDED' }>,
  policy: ModelPolicy,
): void {
  const context = d.context;
  const plan = context.rollback!;
  const from = context.lineage.find((e) => e.version === plan.fromVersion);
  const to = context.lineage.find((e) => e.version === plan.toVersion);
  const automatic = plan.trigger !== 'manual' && plan.trigger !== 'auto_regression_approved';
  d.set({
    productionVersion: plan.toVersion,
    baseline: { elo: to?.elo ?? null, winRate: to?.winRate ?? null },
    lineage: context.lineage.map((e) =>
      e.version === plan.fromVersion ? { ...e, rolledBackFrom: true } : e,
    ),
    streak: 0,
    sprt: null,
    rollback: null,
    lastRollback: { ...plan, completedAt: event.at },
    cooldownUntil: event.at + policy.cooldownMs,
    announcedSeverity: plan.severity,
    autoRollbacks: automatic
      ? [...recentAutoRollbacks(context, event.at, policy), event.at]
      : recentAutoRollbacks(context, event.at, policy),
  });
  d.emit((event_id) => ({
    type: 'PROMOTION_ROLLED_BACK',
    payload: {
      event_id,
      timestamp: seconds(event.at),
      rollback_id: plan.rollbackId,
      detection_id: plan.detectionId,
      model_id: context.modelId,
      config_key: context.configKey,
      from_version: plan.fromVersion,
      to_version: plan.toVersion,
      from_metrics: { elo: from?.elo ?? null, win_rate: from?.winRate ?? null },
      to_metrics: { elo: to?.elo ?? null, win_rate: to?.winRate ?? null },
      reason: plan.reason,
      triggered_by: plan.trigger,
      by: plan.by,
      action_required: 'pause_training',
    },
  }));
  // The notification operators act on, with the rollback itself (not with the pause's acknowledgement, whose
  // arrival order varies): pause_unacknowledged follows if the training config does not confirm.
  alert(
    d,
    event.at,
    'warning',
    'rolled_back',
    `${context.modelId} rolled back ${plan.fromVersion} -> ${plan.toVersion} (${plan.trigger}, by ${plan.by}); training config ${context.configKey} pauses with it: ${plan.reason}`,
    {
      rollback_id: plan.rollbackId,
      from_version: plan.fromVersion,
      to_version: plan.toVersion,
      triggered_by: plan.trigger,
      by: plan.by,
      reason: plan.reason,
    },
  );
  d.answer({ kind: 'rolled_back', rollbackId: plan.rollbackId });
}

export function reportRollbackFailure(
  d: Draft,
  event: Extract<ModelEvent, { type: 'ROLLBACK_FAILED' }>,
): void {
  const plan = d.context.rollback!;
  d.set({ rollback: null });
  rollbackFailed(d, event.at, plan, event.error);
  d.answer({ kind: 'rollback_failed', rollbackId: plan.rollbackId, error: event.error });
}

export function endCooldown(d: Draft): void {
  d.set({ cooldownUntil: null, announcedSeverity: null });
  d.answer({ kind: 'timer', name: 'cooldown' });
}

export function alertPauseUnacknowledged(d: Draft, at: number): void {
  alert(
    d,
    at,
    'critical',
    'pause_unacknowledged',
    `Training config ${d.context.configKey} did not confirm the pause for rollback ${d.context.lastRollback?.rollbackId}`,
  );
}
