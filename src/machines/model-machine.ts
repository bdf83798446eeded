import type { ModelPolicy } from './model-policy.ts';
import { initialModelContext, stepModel } from './model-logic.ts';
import type { ModelContext, ModelEvent, ModelEventType, ModelStateName, Outcome } from './model-types.ts';
import type { OutputEvent } from '../domain/events.ts';
import { createStepMachine } from './step-machine.ts';

/**
 * The model actor's diagram: for each state and event, the states the event may lead to. Which one is
 * taken is decided by `stepModel`; an event may also leave the state as it is (an ignored evaluation, a
 * stale timer). Timers and effect results arrive as events from the runtime, so every path is reachable
 * by a test model without `after` or `invoke`.
 */
export const MODEL_TRANSITIONS: Record<
  ModelStateName,
  Partial<Record<ModelEventType, readonly ModelStateName[]>>
> = {
  healthy: {
    PROMOTED: ['healthy'],
    EVALUATED: ['healthy', 'regressed', 'awaitingApproval', 'rollingBack'],
    ROLLBACK_REQUESTED: ['rollingBack'],
  },
  regressed: {
    PROMOTED: ['healthy'],
    EVALUATED: ['healthy', 'regressed', 'awaitingApproval', 'rollingBack'],
    ROLLBACK_REQUESTED: ['rollingBack'],
  },
  awaitingApproval: {
    PROMOTED: ['healthy'],
    EVALUATED: ['rollingBack'],
    APPROVE: ['rollingBack'],
    REJECT: ['healthy'],
    APPROVAL_EXPIRED: ['rollingBack', 'healthy'],
    ROLLBACK_REQUESTED: ['rollingBack'],
  },
  rollingBack: {
    PROMOTED: [],
    EVALUATED: [],
    ROLLBACK_REQUESTED: [],
    ROLLBACK_SUCCEEDED: ['rolledBack'],
    ROLLBACK_FAILED: ['healthy', 'regressed'],
  },
  rolledBack: {
    PROMOTED: ['healthy'],
    EVALUATED: ['awaitingApproval'],
    ROLLBACK_REQUESTED: ['rollingBack'],
    PAUSE_ACKNOWLEDGED: ['cooldown'],
    COOLDOWN_ELAPSED: ['healthy', 'regressed'],
  },
  cooldown: {
    PROMOTED: ['healthy'],
    EVALUATED: ['awaitingApproval'],
    ROLLBACK_REQUESTED: ['rollingBack'],
    COOLDOWN_ELAPSED: ['healthy', 'regressed'],
  },
};

export interface ModelInput {
  readonly modelId: string;
  readonly configKey: string;
}

export function createModelMachine(policy: ModelPolicy) {
  return createStepMachine<ModelStateName, ModelContext, ModelEvent, ModelInput, OutputEvent, Outcome>({
    id: 'model.v1',
    initial: 'healthy',
    transitions: MODEL_TRANSITIONS,
    context: (input) => initialModelContext(input.modelId, input.configKey),
    step: (from, context, event) => stepModel(from, context, event, policy),
  });
}

export type ModelMachine = ReturnType<typeof createModelMachine>;
