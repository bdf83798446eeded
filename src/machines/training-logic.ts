import type { OutputEvent } from '../domain/events.ts';
import type {
  TrainingContext,
  TrainingEvent,
  TrainingOutcome,
  TrainingPolicy,
  TrainingStateName,
} from './training-types.ts';

export interface TrainingStep {
  readonly target: TrainingStateName | null;
  readonly context: TrainingContext;
  readonly publish: readonly OutputEvent[];
  readonly outcome: TrainingOutcome;
}

const ROLLBACK_ID_LIMIT = 64;

export function initialTrainingContext(configKey: string): TrainingContext {
  return { configKey, by: null, reason: null, since: null, rollbackIds: [], autoResumeAt: null, seq: 0 };
}

function eventId(context: TrainingContext): string {
  return `${context.configKey}.t${context.seq}`;
}

function onPause(
  state: TrainingStateName,
  context: TrainingContext,
  event: Extract<TrainingEvent, { type: 'PAUSE' }>,
  policy: TrainingPolicy,
): TrainingStep {
  const publish: OutputEvent[] = [];
  let next = context;
  const ack = (): void => {
    if (event.rollbackId === undefined || event.modelId === undefined) return;
    next = { ...next, seq: next.seq + 1 };
    publish.push({
      type: 'PAUSE_ACKNOWLEDGED',
      payload: {
        event_id: eventId(next),
        timestamp: event.at / 1000,
        rollback_id: event.rollbackId,
        model_id: event.modelId,
        config_key: context.configKey,
      },
    });
  };
  if (event.rollbackId !== undefined && context.rollbackIds.includes(event.rollbackId)) {
    // A redelivered rollback: acknowledge again (idempotent), pause nothing (an operator may have resumed).
    ack();
    return {
      target: null,
      context: next,
      publish,
      outcome: { kind: 'duplicate', rollbackId: event.rollbackId },
    };
  }
  const rollbackIds =
    event.rollbackId === undefined
      ? context.rollbackIds
      : [...context.rollbackIds, event.rollbackId].slice(-ROLLBACK_ID_LIMIT);
  if (state === 'paused') {
    next = { ...context, rollbackIds };
    ack();
    return { target: null, context: next, publish, outcome: { kind: 'already_paused' } };
  }
  next = {
    ...context,
    by: event.by,
    reason: event.reason,
    since: event.at,
    rollbackIds,
    autoResumeAt: policy.autoResumeMs === null ? null : event.at + policy.autoResumeMs,
    seq: context.seq + 1,
  };
  publish.push({
    type: 'TRAINING_PAUSED',
    payload: {
      event_id: eventId(next),
      timestamp: event.at / 1000,
      config_key: context.configKey,
      reason: event.reason,
      by: event.by,
      model_id: event.modelId ?? null,
      rollback_id: event.rollbackId ?? null,
      from_version: event.fromVersion ?? null,
      to_version: event.toVersion ?? null,
    },
  });
  ack();
  return { target: 'paused', context: next, publish, outcome: { kind: 'paused' } };
}

function resume(context: TrainingContext, at: number, by: string, reason: string): TrainingStep {
  const next: TrainingContext = {
    ...context,
    by,
    reason,
    since: at,
    autoResumeAt: null,
    seq: context.seq + 1,
  };
  return {
    target: 'running',
    context: next,
    publish: [
      {
        type: 'TRAINING_RESUMED',
        payload: {
          event_id: eventId(next),
          timestamp: at / 1000,
          config_key: context.configKey,
          reason,
          by,
          paused_seconds: context.since === null ? 0 : (at - context.since) / 1000,
        },
      },
    ],
    outcome: { kind: 'resumed' },
  };
}

/** One event in one state of a training config. Pure. */
export function stepTraining(
  state: TrainingStateName,
  context: TrainingContext,
  event: TrainingEvent,
  policy: TrainingPolicy,
): TrainingStep {
  const stay = (outcome: TrainingOutcome): TrainingStep => ({ target: null, context, publish: [], outcome });
  switch (event.type) {
    case 'PAUSE':
      return onPause(state, context, event, policy);
    case 'RESUME':
      if (state !== 'paused') return stay({ kind: 'not_paused' });
      return resume(context, event.at, event.by, event.note ?? 'resumed by an operator');
    case 'AUTO_RESUME_ELAPSED':
      if (state !== 'paused' || context.autoResumeAt === null || event.at < context.autoResumeAt) {
        return stay({ kind: 'stale', reason: 'auto-resume not due' });
      }
      return resume(context, event.at, 'warden', 'auto_resume');
  }
}
