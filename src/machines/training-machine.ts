/**
 * The training-config actor: `running` or `paused`. A rollback pauses it (once per rollback, however often
 * the rollback event is delivered) and tells the model the pause is in place; an operator, or the optional
 * auto-resume timer, resumes it. Guards and actions are the small pure functions of training-logic.ts.
 */
import { setup, type EventObject } from 'xstate';
import type { OutputEvent } from '../domain/events.ts';
import { pureAction, type Emitted } from './pure-action.ts';
import {
  TrainingDraft,
  acknowledgeAgain,
  acknowledgePause,
  initialTrainingContext,
  isAutoResumeNotDue,
  isRepeatedRollback,
  pauseTraining,
  recordRollback,
  resumeTraining,
} from './training-logic.ts';
import type {
  TrainingContext,
  TrainingEvent,
  TrainingOutcome,
  TrainingPolicy,
  TrainingStateName,
} from './training-types.ts';
import { stepThrough, type MachineStep } from './walk.ts';

export interface TrainingInput {
  readonly configKey: string;
}

export const TRAINING_MACHINE_ID = 'training.v2';

type Of<T extends TrainingEvent['type']> = Extract<TrainingEvent, { type: T }>;

export function createTrainingMachine(policy: TrainingPolicy) {
  const outcomes = new WeakMap<object, TrainingOutcome>();
  const act = (run: (d: TrainingDraft, event: TrainingEvent) => void): never =>
    pureAction(outcomes, (context: TrainingContext) => new TrainingDraft(context), run as never);

  const machine = setup({
    types: {
      context: {} as TrainingContext,
      events: {} as TrainingEvent,
      emitted: {} as Emitted<OutputEvent>,
      input: {} as TrainingInput,
    },
    guards: {
      isRepeatedRollback: ({ context, event }) => isRepeatedRollback(context, event as Of<'PAUSE'>),
      isAutoResumeNotDue: ({ context, event }) => isAutoResumeNotDue(context, event.at),
    },
    actions: {
      acknowledgeAgain: act((d, event) => acknowledgeAgain(d, event as Of<'PAUSE'>)),
      pauseTraining: act((d, event) => pauseTraining(d, event as Of<'PAUSE'>, policy)),
      recordRollback: act((d, event) => recordRollback(d, event as Of<'PAUSE'>)),
      acknowledgePause: act((d, event) => acknowledgePause(d, event as Of<'PAUSE'>)),
      resumeTraining: act((d, event) => {
        const resume = event as Of<'RESUME'>;
        resumeTraining(d, resume.at, resume.by, resume.note ?? 'resumed by an operator');
      }),
      resumeAutomatically: act((d, event) => resumeTraining(d, event.at, 'warden', 'auto_resume')),
      answerNotPaused: act((d) => d.answer({ kind: 'not_paused' })),
      answerNotDue: act((d) => d.answer({ kind: 'stale', reason: 'auto-resume not due' })),
    },
  }).createMachine({
    id: TRAINING_MACHINE_ID,
    initial: 'running',
    context: ({ input }) => initialTrainingContext(input.configKey),
    states: {
      running: {
        on: {
          PAUSE: [
            { guard: 'isRepeatedRollback', actions: 'acknowledgeAgain' },
            { target: 'paused', actions: ['pauseTraining', 'acknowledgePause'] },
          ],
          RESUME: { actions: 'answerNotPaused' },
        },
      },
      paused: {
        on: {
          PAUSE: [
            { guard: 'isRepeatedRollback', actions: 'acknowledgeAgain' },
            { actions: ['recordRollback', 'acknowledgePause'] },
          ],
          RESUME: { target: 'running', actions: 'resumeTraining' },
          AUTO_RESUME_ELAPSED: [
            { guard: 'isAutoResumeNotDue', actions: 'answerNotDue' },
            { target: 'running', actions: 'resumeAutomatically' },
          ],
        },
      },
    },
  });
  const outcomeOf = (event: EventObject): TrainingOutcome | undefined => outcomes.get(event);
  return Object.assign(machine, { outcomeOf });
}

export type TrainingMachine = ReturnType<typeof createTrainingMachine>;

const trainingMachines = new Map<number | null, TrainingMachine>();

/** One event in one state, through the machine itself (tests compare the runtime against it). */
export function stepTraining(
  state: TrainingStateName,
  context: TrainingContext,
  event: TrainingEvent,
  policy: TrainingPolicy,
): MachineStep<TrainingStateName, TrainingContext, OutputEvent, TrainingOutcome> {
  let machine = trainingMachines.get(policy.autoResumeMs);
  if (!machine) {
    machine = createTrainingMachine(policy);
    trainingMachines.set(policy.autoResumeMs, machine);
  }
  return stepThrough(machine, state, context, event, { configKey: context.configKey });
}
