/**
 * The model actor. Its definition is the policy: every transition has a guard named after the rule of the
 * decision table it stands for (README, "What Warden decides"), listed in the table's order of precedence,
 * and actions named after what they do. Guards read one judgement of the event (model-logic.ts,
 * `judgeEvaluation`), computed once and shared; actions are small pure functions over a draft of the
 * context. Timers and effect results arrive as events from the runtime (src/actors/runtime.ts), so every
 * path can be walked by a test model without `after` or `invoke`.
 *
 * Reading the EVALUATED rows top to bottom in `healthy`:
 *   a duplicate, a handed-back input out of turn, a full queue, an input that must wait for a rollback;
 *   another version; too few games for the threshold rule; a clean evaluation; a regression to watch;
 *   no version to roll back to; a rollback held by the rate limit; a severity that needs approval;
 *   CRITICAL (never waits); any other rollback decision.
 */
import { setup, type EventObject } from 'xstate';
import { stepThrough, type MachineStep } from './walk.ts';
import { LastOutcome, pureAction, type Emitted as PureEmitted } from './pure-action.ts';
import type { OutputEvent } from '../domain/events.ts';
import type { ModelPolicy } from './model-policy.ts';
import {
  Draft,
  addApprovalEvidence,
  admitInput,
  alertApprovalExpired,
  alertPauseUnacknowledged,
  announceRegression,
  answerInputNotTaken,
  clearRegression,
  completeRollback,
  cooldownDeadline,
  endCooldown,
  ignoreOtherVersion,
  initialModelContext,
  judgeEvaluation,
  keepUntilRollbackEnds,
  manualRollbackProblem,
  recordDetection,
  recordInsufficientEvidence,
  rejectApproval,
  reportNoRollbackTarget,
  reportRollbackFailure,
  reportRollbackRefused,
  requestApproval,
  startApprovedRollback,
  startAutomaticRollback,
  startCriticalRollback,
  startManualRollback,
  startRollbackOnExpiry,
  takeEvaluation,
  takePromotion,
  type EvaluationJudgement,
  type EvaluationRule,
} from './model-logic.ts';
import type { ModelContext, ModelEvent, ModelStateName, Outcome } from './model-types.ts';

export interface ModelInput {
  readonly modelId: string;
  readonly configKey: string;
}

export type Emitted = PureEmitted<OutputEvent>;

type Params = { readonly state: ModelStateName };
type Of<T extends ModelEvent['type']> = Extract<ModelEvent, { type: T }>;
type Input = Of<'PROMOTED' | 'EVALUATED'>;

/** The persisted snapshots name their machine; older ones are migrated (src/machines/migrations.ts). */
export const MODEL_MACHINE_ID = 'model.v3';

export function createModelMachine(policy: ModelPolicy) {
  // One judgement per event and state, shared by the guards and the actions of the transition taken. XState
  // takes one event to the end (guards, then the actions of the transition chosen) before the next, so the
  // judgement of the event being taken is the only one kept (a WeakMap entry per event cost the collector).
  let last: { event: object; state: ModelStateName; context: ModelContext; j: EvaluationJudgement } | null =
    null;
  const judge = (
    state: ModelStateName,
    context: ModelContext,
    event: Of<'EVALUATED'>,
  ): EvaluationJudgement => {
    if (last !== null && last.event === event && last.state === state && last.context === context)
      return last.j;
    const j = judgeEvaluation(state, context, event, policy);
    last = { event, state, context, j };
    return j;
  };
  /** The judgement the guards of this transition made (actions run after them, on a changing context). */
  const judged = (event: Of<'EVALUATED'>): EvaluationJudgement => {
    if (last === null || last.event !== event) throw new Error(`no judgement of ${event.type} at hand`);
    return last.j;
  };
  const outcomes = new LastOutcome<Outcome>();

  const evaluationIs =
    (rule: EvaluationRule) =>
    ({ context, event }: { context: ModelContext; event: ModelEvent }, params: unknown): boolean =>
      judge((params as Params).state, context, event as Of<'EVALUATED'>).rule === rule;
  const inputIs =
    (rule: ReturnType<typeof admitInput>['rule']) =>
    ({ context, event }: { context: ModelContext; event: ModelEvent }, params: unknown): boolean =>
      event.type === 'EVALUATED'
        ? judge((params as Params).state, context, event).rule === rule
        : admitInput((params as Params).state, context, event as Input).rule === rule;

  const act = (run: (d: Draft, event: ModelEvent, params: Params) => void): never =>
    pureAction(
      outcomes,
      (context: ModelContext, event: ModelEvent) =>
        new Draft(
          context,
          event.type === 'PROMOTED' || event.type === 'EVALUATED' ? event.metadata : undefined,
        ),
      run as never,
    );

  const machineSetup = setup({
    types: {
      context: {} as ModelContext,
      events: {} as ModelEvent,
      emitted: {} as Emitted,
      input: {} as ModelInput,
    },
    guards: {
      // Every input
      isHandBackOutOfTurn: inputIs('handBackOutOfTurn'),
      isDuplicateInput: inputIs('duplicate'),
      isQueueFull: inputIs('queueFull'),
      mustWaitForRollback: inputIs('waitForRollback'),
      // Evaluations, in the decision table's order
      isOtherVersion: evaluationIs('otherVersion'),
      hasTooFewGames: evaluationIs('tooFewGames'),
      isCriticalWhileAwaitingApproval: evaluationIs('criticalWhileAwaitingApproval'),
      isClean: evaluationIs('clean'),
      isRepeatWithinCooldown: evaluationIs('repeatWithinCooldown'),
      isWatchOnly: evaluationIs('watch'),
      hasNoRollbackTarget: evaluationIs('noRollbackTarget'),
      isHeldByCooldown: evaluationIs('heldByCooldown'),
      isHeldByRateLimit: evaluationIs('heldByRateLimit'),
      needsApproval: evaluationIs('needsApproval'),
      isCritical: evaluationIs('critical'),
      mustRollBack: evaluationIs('rollback'),
      // Operators, the registry, the training config and timers
      isBeforeApprovalDeadline: ({ context, event }) => event.at < context.pending!.deadline,
      expiryRejects: () => policy.onApprovalTimeout === 'reject',
      isManualRollbackImpossible: ({ context, event }) =>
        manualRollbackProblem(context, (event as Of<'ROLLBACK_REQUESTED'>).toVersion) !== null,
      isAnotherRollback: ({ context, event }) =>
        context.rollback?.rollbackId !== (event as Of<'ROLLBACK_SUCCEEDED'>).rollbackId,
      isAckOfAnotherRollback: ({ context, event }) =>
        context.lastRollback?.rollbackId !== (event as Of<'PAUSE_ACKNOWLEDGED'>).rollbackId,
      isCooldownNotOver: ({ context, event }, params: unknown) => {
        const deadline = cooldownDeadline((params as Params).state, context, policy);
        return deadline === null || event.at < deadline;
      },
      hasOpenStreak: ({ context }) => context.streak > 0,
    },
    actions: {
      answerInputNotTaken: act((d, event, { state }) => {
        const rule =
          event.type === 'EVALUATED' ? judged(event).rule : admitInput(state, d.context, event as Input).rule;
        answerInputNotTaken(d, state, event as Input, rule as Parameters<typeof answerInputNotTaken>[3]);
      }),
      keepUntilRollbackEnds: act((d, event, { state }) => keepUntilRollbackEnds(d, state, event as Input)),
      takePromotion: act((d, event, { state }) =>
        takePromotion(d, admitInput(state, d.context, event as Input).context, event as Of<'PROMOTED'>),
      ),
      // Not judged, but taken: a handed-back input leaves the queue all the same.
      ignoreOtherVersion: act((d, event) => {
        d.context = judged(event as Of<'EVALUATED'>).admitted;
        ignoreOtherVersion(d, event as Of<'EVALUATED'>);
      }),
      recordInsufficientEvidence: act((d, event) => {
        d.context = judged(event as Of<'EVALUATED'>).admitted;
        recordInsufficientEvidence(d, event as Of<'EVALUATED'>, policy);
      }),
      takeEvaluation: act((d, event) =>
        takeEvaluation(d, judged(event as Of<'EVALUATED'>), event as Of<'EVALUATED'>),
      ),
      clearRegression: act((d, event) =>
        clearRegression(d, judged(event as Of<'EVALUATED'>), event as Of<'EVALUATED'>),
      ),
      recordDetection: act((d, event) => {
        recordDetection(d, judged(event as Of<'EVALUATED'>), event as Of<'EVALUATED'>, true);
      }),
      recordCriticalDetection: act((d, event) => {
        recordDetection(d, judged(event as Of<'EVALUATED'>), event as Of<'EVALUATED'>, false);
      }),
      announceRegression: act((d, event) =>
        announceRegression(d, judged(event as Of<'EVALUATED'>), event as Of<'EVALUATED'>),
      ),
      addApprovalEvidence: act((d, event) =>
        addApprovalEvidence(d, judged(event as Of<'EVALUATED'>), event as Of<'EVALUATED'>),
      ),
      requestApproval: act((d, event) =>
        requestApproval(d, judged(event as Of<'EVALUATED'>), event.at, policy),
      ),
      reportNoRollbackTarget: act((d, event) => {
        const j = judged(event as Of<'EVALUATED'>);
        reportNoRollbackTarget(d, j, event as Of<'EVALUATED'>, j.admitted);
      }),
      startAutomaticRollback: act((d, event) =>
        startAutomaticRollback(d, judged(event as Of<'EVALUATED'>), event as Of<'EVALUATED'>),
      ),
      startCriticalRollback: act((d, event) =>
        startCriticalRollback(d, judged(event as Of<'EVALUATED'>), event as Of<'EVALUATED'>),
      ),
      startApprovedRollback: act((d, event) => startApprovedRollback(d, event as Of<'APPROVE'>)),
      rejectApproval: act((d) => rejectApproval(d)),
      answerNotDue: act((d, event) =>
        d.answer({
          kind: 'stale',
          reason: event.type === 'APPROVAL_EXPIRED' ? 'approval deadline not reached' : 'cooldown not over',
        }),
      ),
      alertApprovalExpired: act((d, event) => alertApprovalExpired(d, event.at, policy)),
      startRollbackOnExpiry: act((d, event) => startRollbackOnExpiry(d, event.at, policy)),
      reportRollbackRefused: act((d, event) => reportRollbackRefused(d, event as Of<'ROLLBACK_REQUESTED'>)),
      startManualRollback: act((d, event) => startManualRollback(d, event as Of<'ROLLBACK_REQUESTED'>)),
      answerAlreadyRollingBack: act((d) =>
        d.answer({ kind: 'stale', reason: 'a rollback is already in flight' }),
      ),
      answerNoSuchRollback: act((d, event) =>
        d.answer({
          kind: 'stale',
          reason: `no rollback ${(event as Of<'ROLLBACK_SUCCEEDED'>).rollbackId} in flight`,
        }),
      ),
      completeRollback: act((d, event) => completeRollback(d, event as Of<'ROLLBACK_SUCCEEDED'>, policy)),
      reportRollbackFailure: act((d, event) => reportRollbackFailure(d, event as Of<'ROLLBACK_FAILED'>)),
      answerAckOfAnotherRollback: act((d, event) =>
        d.answer({
          kind: 'stale',
          reason: `acknowledgement for another rollback (${(event as Of<'PAUSE_ACKNOWLEDGED'>).rollbackId})`,
        }),
      ),
      noteTrainingPaused: act((d) => d.answer({ kind: 'acknowledged' })),
      endCooldown: act((d) => endCooldown(d)),
      alertPauseUnacknowledged: act((d, event) => alertPauseUnacknowledged(d, event.at)),
    },
  });

  type GuardName = string;
  const when = (state: ModelStateName, guard: GuardName) => ({ type: guard, params: { state } }) as never;
  const doing = (state: ModelStateName, ...names: string[]) =>
    names.map((type) => ({ type, params: { state } })) as never;

  /** Every input first: a duplicate, a hand-back out of turn, a full queue, one that waits its turn. */
  const admission = (s: ModelStateName) => [
    { guard: when(s, 'isHandBackOutOfTurn'), actions: doing(s, 'answerInputNotTaken') },
    { guard: when(s, 'isDuplicateInput'), actions: doing(s, 'answerInputNotTaken') },
    { guard: when(s, 'isQueueFull'), actions: doing(s, 'answerInputNotTaken') },
    { guard: when(s, 'mustWaitForRollback'), actions: doing(s, 'keepUntilRollbackEnds') },
  ];
  const promotion = (s: ModelStateName) => [
    ...admission(s),
    { target: 'healthy', actions: doing(s, 'takePromotion') },
  ];
  const notJudged = (s: ModelStateName) => [
    { guard: when(s, 'isOtherVersion'), actions: doing(s, 'ignoreOtherVersion') },
    { guard: when(s, 'hasTooFewGames'), actions: doing(s, 'recordInsufficientEvidence') },
  ];
  const detected = ['takeEvaluation', 'recordDetection', 'announceRegression'];
  /** The decision table, for a model in production (healthy or regressed). */
  const evaluationInProduction = (s: ModelStateName) => [
    ...admission(s),
    ...notJudged(s),
    { guard: when(s, 'isClean'), target: 'healthy', actions: doing(s, 'takeEvaluation', 'clearRegression') },
    { guard: when(s, 'isWatchOnly'), target: 'regressed', actions: doing(s, ...detected) },
    {
      guard: when(s, 'hasNoRollbackTarget'),
      target: 'regressed',
      actions: doing(s, ...detected, 'reportNoRollbackTarget'),
    },
    {
      guard: when(s, 'isHeldByRateLimit'),
      target: 'awaitingApproval',
      actions: doing(s, ...detected, 'requestApproval'),
    },
    {
      guard: when(s, 'needsApproval'),
      target: 'awaitingApproval',
      actions: doing(s, ...detected, 'requestApproval'),
    },
    {
      guard: when(s, 'isCritical'),
      target: 'rollingBack',
      actions: doing(s, ...detected, 'startAutomaticRollback'),
    },
    {
      guard: when(s, 'mustRollBack'),
      target: 'rollingBack',
      actions: doing(s, ...detected, 'startAutomaticRollback'),
    },
  ];
  /** After a rollback (rolledBack, cooldown): a repeat stays quiet, a rollback decision goes to an operator. */
  const evaluationAfterRollback = (s: ModelStateName) => [
    ...admission(s),
    ...notJudged(s),
    { guard: when(s, 'isClean'), actions: doing(s, 'takeEvaluation', 'clearRegression') },
    { guard: when(s, 'isRepeatWithinCooldown'), actions: doing(s, 'takeEvaluation', 'recordDetection') },
    { guard: when(s, 'isWatchOnly'), actions: doing(s, ...detected) },
    { guard: when(s, 'hasNoRollbackTarget'), actions: doing(s, ...detected, 'reportNoRollbackTarget') },
    {
      guard: when(s, 'isHeldByCooldown'),
      target: 'awaitingApproval',
      actions: doing(s, ...detected, 'requestApproval'),
    },
    {
      guard: when(s, 'needsApproval'),
      target: 'awaitingApproval',
      actions: doing(s, ...detected, 'requestApproval'),
    },
  ];
  const manualRollback = (s: ModelStateName) => [
    { guard: when(s, 'isManualRollbackImpossible'), actions: doing(s, 'reportRollbackRefused') },
    { target: 'rollingBack', actions: doing(s, 'startManualRollback') },
  ];
  const cooldownOver = (s: ModelStateName, ...alerts: string[]) => [
    { guard: when(s, 'isCooldownNotOver'), actions: doing(s, 'answerNotDue') },
    { guard: when(s, 'hasOpenStreak'), target: 'regressed', actions: doing(s, 'endCooldown', ...alerts) },
    { target: 'healthy', actions: doing(s, 'endCooldown', ...alerts) },
  ];

  const machine = machineSetup.createMachine({
    id: MODEL_MACHINE_ID,
    initial: 'healthy',
    context: ({ input }) => initialModelContext(input.modelId, input.configKey),
    states: {
      healthy: {
        on: {
          PROMOTED: promotion('healthy'),
          EVALUATED: evaluationInProduction('healthy'),
          ROLLBACK_REQUESTED: manualRollback('healthy'),
        },
      },
      regressed: {
        on: {
          PROMOTED: promotion('regressed'),
          EVALUATED: evaluationInProduction('regressed'),
          ROLLBACK_REQUESTED: manualRollback('regressed'),
        },
      },
      awaitingApproval: {
        on: {
          PROMOTED: promotion('awaitingApproval'),
          EVALUATED: [
            ...admission('awaitingApproval'),
            ...notJudged('awaitingApproval'),
            {
              guard: when('awaitingApproval', 'isCriticalWhileAwaitingApproval'),
              target: 'rollingBack',
              actions: doing(
                'awaitingApproval',
                'takeEvaluation',
                'recordCriticalDetection',
                'announceRegression',
                'startCriticalRollback',
              ),
            },
            { actions: doing('awaitingApproval', 'takeEvaluation', 'addApprovalEvidence') },
          ],
          APPROVE: { target: 'rollingBack', actions: doing('awaitingApproval', 'startApprovedRollback') },
          REJECT: { target: 'healthy', actions: doing('awaitingApproval', 'rejectApproval') },
          APPROVAL_EXPIRED: [
            {
              guard: when('awaitingApproval', 'isBeforeApprovalDeadline'),
              actions: doing('awaitingApproval', 'answerNotDue'),
            },
            {
              guard: when('awaitingApproval', 'expiryRejects'),
              target: 'healthy',
              actions: doing('awaitingApproval', 'alertApprovalExpired', 'rejectApproval'),
            },
            {
              target: 'rollingBack',
              actions: doing('awaitingApproval', 'alertApprovalExpired', 'startRollbackOnExpiry'),
            },
          ],
          ROLLBACK_REQUESTED: manualRollback('awaitingApproval'),
        },
      },
      rollingBack: {
        on: {
          // Inputs wait for the rollback to end; they are never dropped.
          PROMOTED: [
            ...admission('rollingBack').slice(0, 3),
            { actions: doing('rollingBack', 'keepUntilRollbackEnds') },
          ],
          EVALUATED: [
            ...admission('rollingBack').slice(0, 3),
            { actions: doing('rollingBack', 'keepUntilRollbackEnds') },
          ],
          ROLLBACK_REQUESTED: { actions: doing('rollingBack', 'answerAlreadyRollingBack') },
          ROLLBACK_SUCCEEDED: [
            {
              guard: when('rollingBack', 'isAnotherRollback'),
              actions: doing('rollingBack', 'answerNoSuchRollback'),
            },
            { target: 'rolledBack', actions: doing('rollingBack', 'completeRollback') },
          ],
          ROLLBACK_FAILED: [
            {
              guard: when('rollingBack', 'isAnotherRollback'),
              actions: doing('rollingBack', 'answerNoSuchRollback'),
            },
            {
              guard: when('rollingBack', 'hasOpenStreak'),
              target: 'regressed',
              actions: doing('rollingBack', 'reportRollbackFailure'),
            },
            { target: 'healthy', actions: doing('rollingBack', 'reportRollbackFailure') },
          ],
        },
      },
      rolledBack: {
        on: {
          PROMOTED: promotion('rolledBack'),
          EVALUATED: evaluationAfterRollback('rolledBack'),
          ROLLBACK_REQUESTED: manualRollback('rolledBack'),
          PAUSE_ACKNOWLEDGED: [
            {
              guard: when('rolledBack', 'isAckOfAnotherRollback'),
              actions: doing('rolledBack', 'answerAckOfAnotherRollback'),
            },
            { target: 'cooldown', actions: doing('rolledBack', 'noteTrainingPaused') },
          ],
          COOLDOWN_ELAPSED: cooldownOver('rolledBack', 'alertPauseUnacknowledged'),
        },
      },
      cooldown: {
        on: {
          PROMOTED: promotion('cooldown'),
          EVALUATED: evaluationAfterRollback('cooldown'),
          ROLLBACK_REQUESTED: manualRollback('cooldown'),
          COOLDOWN_ELAPSED: cooldownOver('cooldown'),
        },
      },
    },
  });

  /**
   * The answer to the event just taken, read back by the runtime after `send` (emitting it would cost an
   * action per event on the hot path). Undefined when the state did not accept the event.
   */
  const outcomeOf = (event: EventObject): Outcome | undefined => outcomes.get(event);
  return Object.assign(machine, { outcomeOf });
}

export type ModelMachine = ReturnType<typeof createModelMachine>;

export type Step = MachineStep<ModelStateName, ModelContext, OutputEvent, Outcome>;

const machines = new WeakMap<ModelPolicy, ModelMachine>();

/** One event in one state, through the machine itself: the next state, context, publications, answer. */
export function stepModel(
  state: ModelStateName,
  context: ModelContext,
  event: ModelEvent,
  policy: ModelPolicy,
): Step {
  let machine = machines.get(policy);
  if (!machine) {
    machine = createModelMachine(policy);
    machines.set(policy, machine);
  }
  return stepThrough(machine, state, context, event, {
    modelId: context.modelId,
    configKey: context.configKey,
  }) as Step;
}
