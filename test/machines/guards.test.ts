/**
 * The guards that no input, operator, registry or timer makes hold through the runtime (the model-based tests
 * cover every other one), each taken alone through the machine: they guard against what the runtime
 * promises never to do, so that a broken promise changes nothing instead of corrupting the state.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { modelPolicyFrom } from '../../src/machines/model-policy.ts';
import { createModelMachine, stepModel } from '../../src/machines/model-machine.ts';
import { createTrainingMachine, stepTraining } from '../../src/machines/training-machine.ts';
import { initialModelContext, judgeEvaluation } from '../../src/machines/model-logic.ts';
import { initialTrainingContext } from '../../src/machines/training-logic.ts';
import { transitionTaken } from '../../src/machines/walk.ts';
import type { ModelContext, ModelEvent, ModelStateName } from '../../src/machines/model-types.ts';
import { DEFERRED_INPUT_LIMIT } from '../../src/machines/model-policy.ts';

const policy = modelPolicyFrom(parseConfig({ detection: { mode: 'threshold' } }));
const machine = createModelMachine(policy);

/** Runs events from a fresh model through the machine, returning the state and context after them. */
function after(events: ModelEvent[]): { state: ModelStateName; context: ModelContext } {
  let state: ModelStateName = 'healthy';
  let context = initialModelContext('m', 'm');
  for (const event of events) {
    const step = stepModel(state, context, event, policy);
    state = step.target ?? state;
    context = step.context;
  }
  return { state, context };
}

function guardOf(state: ModelStateName, context: ModelContext, event: ModelEvent): string | null {
  const snapshot = machine.resolveState({ value: state, context });
  return transitionTaken(machine, snapshot, event)?.guard ?? null;
}

const promoted = (version: string, at: number, extra: object = {}): ModelEvent => ({
  type: 'PROMOTED',
  at,
  version,
  elo: 1500,
  ...extra,
});
const evaluated = (drop: number, at: number, extra: object = {}): ModelEvent => ({
  type: 'EVALUATED',
  at,
  metrics: { currentElo: 1500 - drop },
  gamesPlayed: 100,
  ...extra,
});

describe('model guards the runtime never makes hold', () => {
  const rollingBack = after([promoted('v1', 1), promoted('v2', 2), evaluated(80, 3)]);

  it('isDuplicateInput: an input id seen before changes nothing', () => {
    const s = after([promoted('v1', 1, { inputId: 'p1' })]);
    const again = promoted('v1', 5, { inputId: 'p1' });
    expect(guardOf(s.state, s.context, again)).toBe('isDuplicateInput');
    const step = stepModel(s.state, s.context, again, policy);
    expect(step.outcome).toEqual({ kind: 'duplicate', inputId: 'p1' });
    expect(step.context).toEqual(s.context);
  });

  it('isHandBackOutOfTurn and mustWaitForRollback: kept inputs come back in order only', () => {
    expect(rollingBack.state).toBe('rollingBack');
    const kept = stepModel('rollingBack', rollingBack.context, promoted('v3', 4), policy).context;
    const first = kept.deferred![0]!;
    // Handed back while the rollback is still in flight, or another one than the oldest: refused.
    expect(guardOf('rollingBack', kept, { ...first.event, deferredId: first.id })).toBe(
      'isHandBackOutOfTurn',
    );
    expect(guardOf('healthy', kept, { ...first.event, deferredId: first.id + 99 })).toBe(
      'isHandBackOutOfTurn',
    );
    // A new input while others wait goes behind them, also after the rollback has ended.
    expect(guardOf('healthy', kept, evaluated(0, 5))).toBe('mustWaitForRollback');
    const behind = stepModel('healthy', kept, evaluated(0, 5), policy);
    expect(behind.outcome).toEqual({ kind: 'deferred', state: 'healthy', waiting: 2 });
  });

  it('isQueueFull: beyond the limit an input is refused as busy', () => {
    let context = rollingBack.context;
    for (let i = 0; i < DEFERRED_INPUT_LIMIT; i++)
      context = stepModel('rollingBack', context, promoted(`k${i}`, 10 + i), policy).context;
    expect(guardOf('rollingBack', context, promoted('late', 99))).toBe('isQueueFull');
    expect(stepModel('rollingBack', context, promoted('late', 99), policy).outcome).toMatchObject({
      kind: 'busy',
    });
  });

  it('isAnotherRollback: a result for a rollback not in flight is stale', () => {
    const event: ModelEvent = { type: 'ROLLBACK_SUCCEEDED', at: 9, rollbackId: 'm.r999' };
    expect(guardOf('rollingBack', rollingBack.context, event)).toBe('isAnotherRollback');
    expect(stepModel('rollingBack', rollingBack.context, event, policy).target).toBeNull();
  });

  it('isAckOfAnotherRollback, isCooldownNotOver: a stray acknowledgement or an early timer is stale', () => {
    const rolledBack = after([
      promoted('v1', 1),
      promoted('v2', 2),
      evaluated(80, 3),
      { type: 'ROLLBACK_SUCCEEDED', at: 4, rollbackId: rollingBack.context.rollback!.rollbackId },
    ]);
    expect(rolledBack.state).toBe('rolledBack');
    const ack: ModelEvent = { type: 'PAUSE_ACKNOWLEDGED', at: 5, rollbackId: 'other' };
    expect(guardOf('rolledBack', rolledBack.context, ack)).toBe('isAckOfAnotherRollback');
    const early: ModelEvent = { type: 'COOLDOWN_ELAPSED', at: 6 };
    expect(guardOf('rolledBack', rolledBack.context, early)).toBe('isCooldownNotOver');
    expect(stepModel('rolledBack', rolledBack.context, early, policy).outcome).toEqual({
      kind: 'stale',
      reason: 'cooldown not over',
    });
  });

  it('isBeforeApprovalDeadline, isManualRollbackImpossible', () => {
    const approval = modelPolicyFrom(
      parseConfig({ detection: { mode: 'threshold' }, approval: { requireForSevere: true } }),
    );
    let state: ModelStateName = 'healthy';
    let context = initialModelContext('m', 'm');
    for (const event of [promoted('v1', 1), promoted('v2', 2), evaluated(60, 3)]) {
      const step = stepModel(state, context, event, approval);
      state = step.target ?? state;
      context = step.context;
    }
    expect(state).toBe('awaitingApproval');
    const m = createModelMachine(approval);
    const early: ModelEvent = { type: 'APPROVAL_EXPIRED', at: context.pending!.deadline - 1 };
    expect(transitionTaken(m, m.resolveState({ value: state, context }), early)?.guard).toBe(
      'isBeforeApprovalDeadline',
    );
    const impossible: ModelEvent = {
      type: 'ROLLBACK_REQUESTED',
      at: 4,
      by: 'alice',
      reason: 'x',
      toVersion: 'v9',
    };
    expect(transitionTaken(m, m.resolveState({ value: state, context }), impossible)?.guard).toBe(
      'isManualRollbackImpossible',
    );
    expect(stepModel(state, context, impossible, approval).outcome).toMatchObject({
      kind: 'rollback_refused',
    });
  });

  it('one judgement per event: the guards of an evaluation assess it once', () => {
    const s = after([promoted('v1', 1), promoted('v2', 2)]);
    const j = judgeEvaluation('healthy', s.context, evaluated(80, 3) as never, policy);
    expect(j.rule).toBe('critical');
    expect(judgeEvaluation('cooldown', s.context, evaluated(80, 3) as never, policy).rule).toBe(
      'heldByCooldown',
    );
  });
});

describe('training guards the runtime never makes hold', () => {
  it('isAutoResumeNotDue: an early auto-resume is stale', () => {
    const machine = createTrainingMachine({ autoResumeMs: 60_000 });
    const paused = stepTraining(
      'running',
      initialTrainingContext('k'),
      { type: 'PAUSE', at: 1000, by: 'a', reason: 'r' },
      { autoResumeMs: 60_000 },
    );
    const early = { type: 'AUTO_RESUME_ELAPSED' as const, at: 1000 };
    const snapshot = machine.resolveState({ value: 'paused', context: paused.context });
    expect(transitionTaken(machine, snapshot, early)?.guard).toBe('isAutoResumeNotDue');
    expect(stepTraining('paused', paused.context, early, { autoResumeMs: 60_000 }).outcome).toEqual({
      kind: 'stale',
      reason: 'auto-resume not due',
    });
  });
});
