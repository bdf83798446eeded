import type { OutputEvent } from '../domain/events.ts';
import { createStepMachine } from './step-machine.ts';
import { initialTrainingContext, stepTraining } from './training-logic.ts';
import type {
  TrainingContext,
  TrainingEvent,
  TrainingEventType,
  TrainingOutcome,
  TrainingPolicy,
  TrainingStateName,
} from './training-types.ts';

/** The training-config actor's diagram. PAUSE in paused records the rollback but announces nothing. */
export const TRAINING_TRANSITIONS: Record<
  TrainingStateName,
  Partial<Record<TrainingEventType, readonly TrainingStateName[]>>
> = {
  running: {
    PAUSE: ['paused'],
    RESUME: [],
  },
  paused: {
    PAUSE: [],
    RESUME: ['running'],
    AUTO_RESUME_ELAPSED: ['running'],
  },
};

export interface TrainingInput {
  readonly configKey: string;
}

export function createTrainingMachine(policy: TrainingPolicy) {
  return createStepMachine<
    TrainingStateName,
    TrainingContext,
    TrainingEvent,
    TrainingInput,
    OutputEvent,
    TrainingOutcome
  >({
    id: 'training.v1',
    initial: 'running',
    transitions: TRAINING_TRANSITIONS,
    context: (input) => initialTrainingContext(input.configKey),
    step: (from, context, event) => stepTraining(from, context, event, policy),
  });
}

export type TrainingMachine = ReturnType<typeof createTrainingMachine>;
