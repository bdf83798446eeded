import type { OutputEvent } from '../domain/events.ts';
import type { TrainingContext, TrainingEvent, TrainingOutcome, TrainingPolicy } from './training-types.ts';

const ROLLBACK_ID_LIMIT = 64;

export function initialTrainingContext(configKey: string): TrainingContext {
  return { configKey, by: null, reason: null, since: null, rollbackIds: [], autoResumeAt: null, seq: 0 };
}

/** Builds one transition's context and publications, with deterministic ids, and its answer. */
export class TrainingDraft {
  context: TrainingContext;
  readonly publish: OutputEvent[] = [];
  outcome: TrainingOutcome | undefined;

  constructor(context: TrainingContext) {
    this.context = context;
  }

  /** The next event id of this config (its counter moves with every publication). */
  nextEventId(): string {
    this.context = { ...this.context, seq: this.context.seq + 1 };
    return `${this.context.configKey}.t${this.context.seq}`;
  }

  answer(outcome: TrainingOutcome): void {
    this.outcome = outcome;
  }
}

type Pause = Extract<TrainingEvent, { type: 'PAUSE' }>;

/** A pause for a rollback this config has paused for already (a redelivery). */
export function isRepeatedRollback(context: TrainingContext, event: Pause): boolean {
  return event.rollbackId !== undefined && context.rollbackIds.includes(event.rollbackId);
}

export function isAutoResumeNotDue(context: TrainingContext, at: number): boolean {
  return context.autoResumeAt === null || at < context.autoResumeAt;
}

/** Tells the model the pause for its rollback is in place (only pauses caused by a rollback). */
export function acknowledgePause(d: TrainingDraft, event: Pause): void {
  if (event.rollbackId === undefined || event.modelId === undefined) return;
  const eventId = d.nextEventId();
  d.publish.push({
    type: 'PAUSE_ACKNOWLEDGED',
    payload: {
      event_id: eventId,
      timestamp: event.at / 1000,
      rollback_id: event.rollbackId,
      model_id: event.modelId,
      config_key: d.context.configKey,
    },
  });
}

/** A redelivered rollback: acknowledged again (idempotent), nothing paused twice (an operator may have resumed). */
export function acknowledgeAgain(d: TrainingDraft, event: Pause): void {
  acknowledgePause(d, event);
  d.answer({ kind: 'duplicate', rollbackId: event.rollbackId! });
}

function withRollback(context: TrainingContext, event: Pause): readonly string[] {
  return event.rollbackId === undefined
    ? context.rollbackIds
    : [...context.rollbackIds, event.rollbackId].slice(-ROLLBACK_ID_LIMIT);
}

/** Already paused: the rollback is remembered, nothing is announced. */
export function recordRollback(d: TrainingDraft, event: Pause): void {
  d.context = { ...d.context, rollbackIds: withRollback(d.context, event) };
  d.answer({ kind: 'already_paused' });
}

export function pauseTraining(d: TrainingDraft, event: Pause, policy: TrainingPolicy): void {
  d.context = {
    ...d.context,
    by: event.by,
    reason: event.reason,
    since: event.at,
    rollbackIds: withRollback(d.context, event),
    autoResumeAt: policy.autoResumeMs === null ? null : event.at + policy.autoResumeMs,
  };
  const eventId = d.nextEventId();
  d.publish.push({
    type: 'TRAINING_PAUSED',
    payload: {
      event_id: eventId,
      timestamp: event.at / 1000,
      config_key: d.context.configKey,
      reason: event.reason,
      by: event.by,
      model_id: event.modelId ?? null,
      rollback_id: event.rollbackId ?? null,
      from_version: event.fromVersion ?? null,
      to_version: event.toVersion ?? null,
    },
  });
  d.answer({ kind: 'paused' });
}

export function resumeTraining(d: TrainingDraft, at: number, by: string, reason: string): void {
  const since = d.context.since;
  d.context = { ...d.context, by, reason, since: at, autoResumeAt: null };
  const eventId = d.nextEventId();
  d.publish.push({
    type: 'TRAINING_RESUMED',
    payload: {
      event_id: eventId,
      timestamp: at / 1000,
      config_key: d.context.configKey,
      reason,
      by,
      paused_seconds: since === null ? 0 : (at - since) / 1000,
    },
  });
  d.answer({ kind: 'resumed' });
}
