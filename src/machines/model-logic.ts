/**
 * The model actor's decisions as pure functions: given the state, the context and one event, what the next
 * state, context and publications are. The XState machine (model-machine.ts) is the shell that names the
 * states and the allowed transitions; everything it does goes through `stepModel`.
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

export interface Step {
  /** null: stay in the current state. */
  readonly target: ModelStateName | null;
  readonly context: ModelContext;
  readonly publish: readonly OutputEvent[];
  readonly outcome: Outcome;
}

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

/** Builds publications with deterministic ids, so a replay after a crash republishes the same ids. */
class Draft {
  context: ModelContext;
  readonly publish: OutputEvent[] = [];

  constructor(context: ModelContext) {
    this.context = context;
  }

  nextId(prefix: string): string {
    this.context = { ...this.context, seq: this.context.seq + 1 };
    return `${this.context.modelId}.${prefix}${this.context.seq}`;
  }

  emit(build: (eventId: string) => OutputEvent): void {
    this.publish.push(build(this.nextId('e')));
  }

  set(patch: Partial<ModelContext>): void {
    this.context = { ...this.context, ...patch };
  }

  step(target: ModelStateName | null, outcome: Outcome): Step {
    return { target, context: this.context, publish: this.publish, outcome };
  }
}

const seconds = (ms: number): number => ms / 1000;

function stay(context: ModelContext, outcome: Outcome): Step {
  return { target: null, context, publish: [], outcome };
}

function rememberInput(context: ModelContext, inputId: string | undefined): ModelContext {
  if (inputId === undefined) return context;
  const ids = [...context.recentInputIds, inputId];
  return {
    ...context,
    recentInputIds: ids.length > RECENT_INPUT_LIMIT ? ids.slice(-RECENT_INPUT_LIMIT) : ids,
  };
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
 * The gate every input passes first. A redelivered input is a duplicate. While a rollback is in flight an
 * input is not dropped but kept with the state, and so is every input behind one already waiting (order
 * per model); the runtime hands them back, oldest first, once the rollback has ended. An evaluation that
 * names no version is kept as an evaluation of the version in production when it arrived, so that it is
 * not read as one of the version rolled back to. Returns the step that ends here, or the context to go on
 * with.
 */
function admit(state: ModelStateName, context: ModelContext, event: Input): Step | ModelContext {
  const waiting = deferredOf(context);
  if (event.deferredId !== undefined) {
    if (state === 'rollingBack' || waiting[0]?.id !== event.deferredId) {
      return stay(context, { kind: 'stale', reason: `deferred input ${event.deferredId} is not next` });
    }
    return { ...context, deferred: waiting.slice(1) };
  }
  if (event.inputId !== undefined && context.recentInputIds.includes(event.inputId)) {
    // A redelivered input must not undo what happened since (a rollback, a later promotion).
    return stay(context, { kind: 'duplicate', inputId: event.inputId });
  }
  if (state !== 'rollingBack' && waiting.length === 0) return context;
  if (waiting.length >= DEFERRED_INPUT_LIMIT) {
    return stay(context, { kind: 'busy', state, waiting: waiting.length });
  }
  const seq = context.seq + 1;
  const kept: Input =
    event.type === 'EVALUATED' && event.version === undefined
      ? { ...event, version: versionAfterWaiting(context) ?? undefined, inputId: undefined }
      : { ...event, inputId: undefined };
  return {
    target: null,
    context: {
      ...rememberInput(context, event.inputId),
      seq,
      deferred: [...waiting, { id: seq, event: kept }],
    },
    publish: [],
    outcome: { kind: 'deferred', state, waiting: waiting.length + 1 },
  };
}

const isStep = (x: Step | ModelContext): x is Step => 'outcome' in x;

/** Where a paused or failed flow returns to: regressed while a streak is open, else healthy. */
function restingState(context: ModelContext): ModelStateName {
  return context.streak > 0 ? 'regressed' : 'healthy';
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

function startRollback(
  draft: Draft,
  at: number,
  spec: Omit<RollbackPlan, 'rollbackId' | 'startedAt' | 'fromVersion'>,
): Step {
  const plan: RollbackPlan = {
    ...spec,
    rollbackId: draft.nextId('r'),
    fromVersion: draft.context.productionVersion!,
    startedAt: at,
  };
  draft.set({ rollback: plan, pending: null });
  return draft.step('rollingBack', {
    kind: 'rollback_started',
    rollbackId: plan.rollbackId,
    toVersion: plan.toVersion,
  });
}

// -------------------------------------------------------------------------------------------------
// Events

function onPromoted(
  state: ModelStateName,
  arrived: ModelContext,
  event: Extract<ModelEvent, { type: 'PROMOTED' }>,
): Step {
  const admitted = admit(state, arrived, event);
  if (isStep(admitted)) return admitted;
  const context = admitted;
  const entry = {
    version: event.version,
    elo: event.elo ?? null,
    winRate: event.winRate ?? null,
    promotedAt: event.at,
    rolledBackFrom: false,
  };
  const previous = context.lineage.find((e) => e.version === event.version);
  // A re-promotion keeps the version's history: once rolled back from, never a target again.
  const lineage = [
    ...context.lineage.filter((e) => e.version !== event.version),
    { ...entry, rolledBackFrom: previous?.rolledBackFrom ?? false },
  ].slice(-LINEAGE_LIMIT);
  const next: ModelContext = {
    ...rememberInput(context, event.inputId),
    productionVersion: event.version,
    baseline: { elo: entry.elo, winRate: entry.winRate },
    lineage,
    streak: 0,
    lastDetection: null,
    announcedSeverity: null,
    cooldownUntil: null,
    pending: null, // a new promotion supersedes a pending approval
    sprt: null,
  };
  return {
    target: 'healthy',
    context: next,
    publish: [],
    outcome: { kind: 'promoted', version: event.version },
  };
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

function requestApproval(
  draft: Draft,
  at: number,
  detection: Detection,
  heldBecause: HeldBecause,
  toVersion: string,
  policy: ModelPolicy,
): Step {
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
  draft.set({ pending });
  const { modelId, configKey, productionVersion } = draft.context;
  draft.emit((event_id) => ({
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
    draft,
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
      draft,
      at,
      'warning',
      'rate_limited',
      `${modelId} reached ${policy.autoRollbackLimit.max} automatic rollbacks in ${policy.autoRollbackLimit.windowMs / 3_600_000} h: an operator decides`,
    );
  }
  return draft.step('awaitingApproval', { kind: 'approval_requested', detectionId: detection.detectionId });
}

function onEvaluated(
  state: ModelStateName,
  arrived: ModelContext,
  event: Extract<ModelEvent, { type: 'EVALUATED' }>,
  policy: ModelPolicy,
): Step {
  const admitted = admit(state, arrived, event);
  if (isStep(admitted)) return admitted;
  const context = admitted;
  if (event.version !== undefined && event.version !== context.productionVersion) {
    return stay(context, {
      kind: 'ignored_version',
      version: event.version,
      productionVersion: context.productionVersion,
    });
  }
  // minGames gates the threshold rule's single-window judgement only: in statistical mode every window
  // with game outcomes counts toward the running test, however small.
  if (
    event.gamesPlayed < policy.detection.minGames &&
    !judgedStatistically(context.modelId, event.outcomes, policy)
  ) {
    return stay(context, {
      kind: 'insufficient_evidence',
      gamesPlayed: event.gamesPlayed,
      minGames: policy.detection.minGames,
    });
  }

  const a = assess(context, event, policy);
  const remembered = rememberInput(context, event.inputId);
  // Copies only what changed: this is the path of every evaluation.
  const draft = new Draft(a.sprt === context.sprt ? remembered : { ...remembered, sprt: a.sprt });
  const quiet = state === 'cooldown' || state === 'rolledBack';

  if (a.severity === null) {
    if (state === 'awaitingApproval') {
      return addEvidence(draft, event, a);
    }
    const hadStreak = context.streak > 0;
    if (hadStreak) draft.set({ streak: 0 });
    if (hadStreak) {
      const { modelId, configKey, productionVersion, baseline, lastDetection } = draft.context;
      const current = event.metrics.currentElo ?? null;
      draft.emit((event_id) => ({
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
    }
    return draft.step(quiet ? null : 'healthy', hadStreak ? { kind: 'cleared' } : { kind: 'healthy' });
  }

  const severity = a.severity;
  draft.set({ streak: context.streak + 1 });
  const detection: Detection = {
    detectionId: draft.nextId('d'),
    severity,
    at: event.at,
    currentElo: event.metrics.currentElo ?? null,
    reason: a.reason,
  };

  if (state === 'awaitingApproval') {
    const pending = context.pending!;
    // CRITICAL evidence rolls back now, unless the request was held by a safety brake.
    if (severity === 'critical' && pending.heldBecause === 'approval_required') {
      draft.set({ lastDetection: detection });
      announce(draft, event, { ...a, severity }, detection, 'rollback');
      return startRollback(draft, event.at, {
        detectionId: detection.detectionId,
        toVersion: pending.toVersion,
        trigger: 'auto_regression_critical',
        by: 'warden',
        reason: `Auto-rollback: CRITICAL regression while awaiting approval - ${a.reason}`,
        severity,
      });
    }
    return addEvidence(draft, event, a);
  }

  // Inside a cooldown a repeat of the same or a milder severity is not announced again.
  const announced = !(quiet && severityRank(severity) <= severityRank(context.announcedSeverity));
  let decision = a.decision;
  let heldBecause: HeldBecause | null = decision === 'await_approval' ? 'approval_required' : null;
  if (decision === 'rollback') {
    if (quiet) {
      decision = 'await_approval';
      heldBecause = 'cooldown';
    } else if (recentAutoRollbacks(context, event.at, policy).length >= policy.autoRollbackLimit.max) {
      decision = 'await_approval';
      heldBecause = 'rate_limit';
    }
  }
  draft.set({
    lastDetection: detection,
    announcedSeverity: quiet && announced ? severity : context.announcedSeverity,
  });
  if (announced || decision !== 'watch') announce(draft, event, { ...a, severity }, detection, decision);
  const outcome: Outcome = {
    kind: 'regression',
    severity,
    decision,
    detectionId: detection.detectionId,
    announced,
  };

  if (decision === 'watch') return { ...draft.step(quiet ? null : 'regressed', outcome) };

  const target = lastKnownGood(draft.context);
  if (target === null) {
    rollbackFailed(
      draft,
      event.at,
      {
        rollbackId: null,
        detectionId: detection.detectionId,
        fromVersion: context.productionVersion!,
        toVersion: null,
        trigger: a.trigger,
        by: 'warden',
        reason: a.reason,
      },
      'no earlier known-good version to roll back to',
    );
    return draft.step(quiet ? null : 'regressed', outcome);
  }
  if (decision === 'await_approval') {
    const step = requestApproval(draft, event.at, detection, heldBecause!, target, policy);
    return { ...step, outcome };
  }
  const step = startRollback(draft, event.at, {
    detectionId: detection.detectionId,
    toVersion: target,
    trigger: a.trigger,
    by: 'warden',
    reason:
      a.trigger === 'auto_regression_sprt'
        ? `Auto-rollback: the SPRT accepted a regression - ${a.reason}`
        : `Auto-rollback: ${severity.toUpperCase()} regression - ${a.reason}`,
    severity,
  });
  return { ...step, outcome };
}

function addEvidence(draft: Draft, event: Extract<ModelEvent, { type: 'EVALUATED' }>, a: Assessment): Step {
  const pending = draft.context.pending!;
  const evidence = [
    ...pending.evidence,
    { at: event.at, severity: a.severity, reason: a.reason, gamesPlayed: event.gamesPlayed },
  ].slice(-EVIDENCE_LIMIT);
  // Awaiting approval is never overwritten by a later detection: the evidence accumulates instead.
  const severity = severityRank(a.severity) > severityRank(pending.severity) ? a.severity! : pending.severity;
  draft.set({ pending: { ...pending, evidence, severity } });
  return draft.step(null, { kind: 'evidence_added', detectionId: pending.detectionId });
}

function onApprove(context: ModelContext, event: Extract<ModelEvent, { type: 'APPROVE' }>): Step {
  const pending = context.pending!;
  const draft = new Draft(context);
  return startRollback(draft, event.at, {
    detectionId: pending.detectionId,
    toVersion: pending.toVersion,
    trigger: 'auto_regression_approved',
    by: event.by,
    reason: `Approved rollback: ${pending.reason}${event.note ? ` (${event.note})` : ''}`,
    severity: pending.severity,
  });
}

function onReject(context: ModelContext): Step {
  // The operator accepts the current version: the streak starts over.
  const next = { ...context, pending: null, streak: 0 };
  return { target: 'healthy', context: next, publish: [], outcome: { kind: 'rejected' } };
}

function onApprovalExpired(
  context: ModelContext,
  event: Extract<ModelEvent, { type: 'APPROVAL_EXPIRED' }>,
  policy: ModelPolicy,
): Step {
  const pending = context.pending!;
  if (event.at < pending.deadline)
    return stay(context, { kind: 'stale', reason: 'approval deadline not reached' });
  const draft = new Draft(context);
  alert(
    draft,
    event.at,
    'warning',
    'approval_expired',
    `Approval for ${context.modelId} expired after ${policy.approvalTimeoutMs / 1000} s: ${policy.onApprovalTimeout}`,
  );
  if (policy.onApprovalTimeout === 'reject') {
    draft.set({ pending: null, streak: 0 });
    return draft.step('healthy', { kind: 'rejected' });
  }
  return startRollback(draft, event.at, {
    detectionId: pending.detectionId,
    toVersion: pending.toVersion,
    trigger: 'approval_expired',
    by: 'warden',
    reason: `Approval timed out after ${policy.approvalTimeoutMs / 1000} s: ${pending.reason}`,
    severity: pending.severity,
  });
}

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

function onRollbackRequested(
  state: ModelStateName,
  context: ModelContext,
  event: Extract<ModelEvent, { type: 'ROLLBACK_REQUESTED' }>,
): Step {
  if (state === 'rollingBack')
    return stay(context, { kind: 'stale', reason: 'a rollback is already in flight' });
  const problem = manualRollbackProblem(context, event.toVersion);
  const draft = new Draft(context);
  if (problem !== null) {
    rollbackFailed(
      draft,
      event.at,
      {
        rollbackId: null,
        detectionId: null,
        fromVersion: context.productionVersion,
        toVersion: event.toVersion ?? null,
        trigger: 'manual',
        by: event.by,
        reason: event.reason,
      },
      problem,
    );
    return draft.step(null, { kind: 'rollback_refused', error: problem });
  }
  return startRollback(draft, event.at, {
    detectionId: context.pending?.detectionId ?? null,
    toVersion: event.toVersion ?? lastKnownGood(context)!,
    trigger: 'manual',
    by: event.by,
    reason: event.reason,
    severity: null,
  });
}

function onRollbackSucceeded(
  context: ModelContext,
  event: Extract<ModelEvent, { type: 'ROLLBACK_SUCCEEDED' }>,
  policy: ModelPolicy,
): Step {
  const plan = context.rollback;
  if (plan === null || plan.rollbackId !== event.rollbackId) {
    return stay(context, { kind: 'stale', reason: `no rollback ${event.rollbackId} in flight` });
  }
  const from = context.lineage.find((e) => e.version === plan.fromVersion);
  const to = context.lineage.find((e) => e.version === plan.toVersion);
  const automatic = plan.trigger !== 'manual' && plan.trigger !== 'auto_regression_approved';
  const draft = new Draft({
    ...context,
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
  draft.emit((event_id) => ({
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
    draft,
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
  return draft.step('rolledBack', { kind: 'rolled_back', rollbackId: plan.rollbackId });
}

function onRollbackFailed(
  context: ModelContext,
  event: Extract<ModelEvent, { type: 'ROLLBACK_FAILED' }>,
): Step {
  const plan = context.rollback;
  if (plan === null || plan.rollbackId !== event.rollbackId) {
    return stay(context, { kind: 'stale', reason: `no rollback ${event.rollbackId} in flight` });
  }
  const draft = new Draft({ ...context, rollback: null });
  rollbackFailed(draft, event.at, plan, event.error);
  return draft.step(restingState(draft.context), {
    kind: 'rollback_failed',
    rollbackId: plan.rollbackId,
    error: event.error,
  });
}

function onPauseAcknowledged(
  context: ModelContext,
  event: Extract<ModelEvent, { type: 'PAUSE_ACKNOWLEDGED' }>,
): Step {
  if (context.lastRollback?.rollbackId !== event.rollbackId) {
    return stay(context, {
      kind: 'stale',
      reason: `acknowledgement for another rollback (${event.rollbackId})`,
    });
  }
  return { target: 'cooldown', context, publish: [], outcome: { kind: 'acknowledged' } };
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

function onCooldownElapsed(
  state: ModelStateName,
  context: ModelContext,
  event: Extract<ModelEvent, { type: 'COOLDOWN_ELAPSED' }>,
  policy: ModelPolicy,
): Step {
  const deadline = cooldownDeadline(state, context, policy);
  if (deadline === null || event.at < deadline)
    return stay(context, { kind: 'stale', reason: 'cooldown not over' });
  const draft = new Draft({ ...context, cooldownUntil: null, announcedSeverity: null });
  if (state === 'rolledBack') {
    alert(
      draft,
      event.at,
      'critical',
      'pause_unacknowledged',
      `Training config ${context.configKey} did not confirm the pause for rollback ${context.lastRollback?.rollbackId}`,
    );
  }
  return draft.step(restingState(draft.context), { kind: 'timer', name: 'cooldown' });
}

/** One event in one state: the next state, context, publications and outcome. Pure. */
export function stepModel(
  state: ModelStateName,
  context: ModelContext,
  event: ModelEvent,
  policy: ModelPolicy,
): Step {
  return withInputMetadata(decideStep(state, context, event, policy), event);
}

/** An input's metadata goes into every event it causes (additive: consumers may ignore it). */
function withInputMetadata(step: Step, event: ModelEvent): Step {
  const metadata = event.type === 'PROMOTED' || event.type === 'EVALUATED' ? event.metadata : undefined;
  if (metadata === undefined || step.publish.length === 0) return step;
  return {
    ...step,
    publish: step.publish.map((e) => ({ ...e, payload: { ...e.payload, metadata } }) as OutputEvent),
  };
}

function decideStep(
  state: ModelStateName,
  context: ModelContext,
  event: ModelEvent,
  policy: ModelPolicy,
): Step {
  switch (event.type) {
    case 'PROMOTED':
      return onPromoted(state, context, event);
    case 'EVALUATED':
      return onEvaluated(state, context, event, policy);
    case 'APPROVE':
      return onApprove(context, event);
    case 'REJECT':
      return onReject(context);
    case 'APPROVAL_EXPIRED':
      return onApprovalExpired(context, event, policy);
    case 'ROLLBACK_REQUESTED':
      return onRollbackRequested(state, context, event);
    case 'ROLLBACK_SUCCEEDED':
      return onRollbackSucceeded(context, event, policy);
    case 'ROLLBACK_FAILED':
      return onRollbackFailed(context, event);
    case 'PAUSE_ACKNOWLEDGED':
      return onPauseAcknowledged(context, event);
    case 'COOLDOWN_ELAPSED':
      return onCooldownElapsed(state, context, event, policy);
  }
}
