/**
 * The policy lab steps the machines without XState's interpreter (src/machines/flat-step.ts). It must give
 * exactly what XState gives: the same state, context, publications and answer after every event. fast-check
 * draws event sequences that reach every state of both machines (promotions, evaluations good and bad, with
 * and without game outcomes, duplicates, inputs kept during a rollback and handed back in and out of turn,
 * operators, the registry's answers for this rollback and another, acknowledgements, timers early and late)
 * over several policies, and drives an XState actor and the flat stepper side by side. A walk of the model
 * machine's graph (@xstate/graph) under each policy, and the rules of admission tried in every state, compare
 * the two on every edge, and together they must take every transition the machine declares.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createActor, setup, type SnapshotFrom } from 'xstate';
import { adjacencyMapToArray, getAdjacencyMap } from '@xstate/graph';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { createModelMachine } from '../../src/machines/model-machine.ts';
import { createTrainingMachine } from '../../src/machines/training-machine.ts';
import { modelPolicyFrom } from '../../src/machines/model-policy.ts';
import { cooldownDeadline, deferredOf } from '../../src/machines/model-logic.ts';
import { declaredTransitions, transitionTaken } from '../../src/machines/walk.ts';
import { DEFERRED_INPUT_LIMIT } from '../../src/machines/model-policy.ts';
import { abstractModelState } from '../support/model-walk.ts';
import { flatStepper, type FlatSnapshot } from '../../src/machines/flat-step.ts';
import {
  MODEL_STATES,
  type ModelContext,
  type ModelEvent,
  type ModelStateName,
} from '../../src/machines/model-types.ts';
import type { TrainingContext, TrainingEvent, TrainingStateName } from '../../src/machines/training-types.ts';
import type { OutputEvent } from '../../src/domain/events.ts';

const POLICIES: Record<string, ConfigInput> = {
  defaults: {},
  'threshold, approval for severe, expiry rejects': {
    detection: { mode: 'threshold' },
    approval: { requireForSevere: true, onTimeout: 'reject' },
  },
  'threshold, approval for severe, expiry rolls back': {
    detection: { mode: 'threshold' },
    approval: { requireForSevere: true, onTimeout: 'rollback' },
  },
  'statistical, one automatic rollback a day': {
    detection: { mode: 'statistical' },
    autoRollbackLimit: { max: 1 },
  },
  'threshold, strict ladder': {
    detection: {
      mode: 'threshold',
      eloDrop: { minor: 10, moderate: 25, severe: 50, critical: 75 },
      escalateAt: 2,
      forceActionAt: 2,
    },
  },
};

/** One step of a drawn scenario; fields that depend on the state are resolved when it is sent. */
type Op =
  | { op: 'promote'; version: number; inputId: number | null; dt: number }
  | {
      op: 'evaluate';
      drop: number;
      games: number;
      version: number | null;
      outcomes: { wins: number; draws: number; losses: number } | null;
      inputId: number | null;
      dt: number;
    }
  | { op: 'handBack'; inTurn: boolean; dt: number }
  | { op: 'approve' | 'reject'; dt: number }
  | { op: 'manualRollback'; toVersion: number | null; dt: number }
  | { op: 'registry'; succeeded: boolean; thisRollback: boolean; dt: number }
  | { op: 'acknowledge'; thisRollback: boolean; dt: number }
  | { op: 'cooldownTimer' | 'approvalTimer'; lateBy: number };

const dt = fc.integer({ min: 0, max: 4 * 3_600_000 });
/** True three times in four: the registry's answer and the acknowledgement are mostly for this rollback. */
const mostly = fc.integer({ min: 0, max: 3 }).map((n) => n > 0);
const inputId = fc.option(fc.integer({ min: 1, max: 6 }), { nil: null });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('promote' as const),
      version: fc.integer({ min: 1, max: 4 }),
      inputId,
      dt,
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('evaluate' as const),
      drop: fc.oneof(fc.constantFrom(0, 30, 60, 90), fc.integer({ min: -20, max: 120 })),
      games: fc.oneof(fc.constant(200), fc.integer({ min: 0, max: 400 })),
      version: fc.oneof(
        { weight: 5, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.integer({ min: 1, max: 4 }) },
      ),
      outcomes: fc.option(
        fc.record({
          wins: fc.integer({ min: 0, max: 80 }),
          draws: fc.integer({ min: 0, max: 20 }),
          losses: fc.integer({ min: 0, max: 80 }),
        }),
        { nil: null, freq: 4 },
      ),
      inputId,
      dt,
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('handBack' as const), inTurn: fc.boolean(), dt }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom('approve' as const, 'reject' as const), dt }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('manualRollback' as const),
      toVersion: fc.option(fc.integer({ min: 1, max: 5 }), { nil: null }),
      dt,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('registry' as const),
      succeeded: mostly,
      thisRollback: mostly,
      dt,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('acknowledge' as const), thisRollback: mostly, dt }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constantFrom('cooldownTimer' as const, 'approvalTimer' as const),
      lateBy: fc.integer({ min: -60_000, max: 600_000 }),
    }),
  },
);

function prologue(drop: number): Op[] {
  const bad: Op = {
    op: 'evaluate',
    drop,
    games: 200,
    version: null,
    outcomes: null,
    inputId: null,
    dt: 60_000,
  };
  return [
    { op: 'promote', version: 1, inputId: null, dt: 0 },
    { op: 'promote', version: 2, inputId: null, dt: 60_000 },
    bad,
    bad,
    bad,
  ];
}

/**
 * After the prologue of a critical drop: the registry's answer, the pause acknowledged, the cooldown over.
 * With the prologues of a severe and a moderate drop alone, given to every property as examples, so that
 * every state is reached whatever the random scenarios draw (in 150 of them, now and then none reached the
 * cooldown).
 */
const THROUGH_COOLDOWN: Op[] = [
  { op: 'registry', succeeded: true, thisRollback: true, dt: 1_000 },
  { op: 'acknowledge', thisRollback: true, dt: 1_000 },
  { op: 'cooldownTimer', lateBy: 0 },
];

/** The event an op stands for in a model's current state (null: nothing to send). */
function modelEvent(
  o: Op,
  state: ModelStateName,
  c: ModelContext,
  now: number,
  policy: ReturnType<typeof modelPolicyFrom>,
): ModelEvent | null {
  const id = (n: number | null) => (n === null ? {} : { inputId: `i${n}` });
  switch (o.op) {
    case 'promote':
      return { type: 'PROMOTED', at: now, version: `v${o.version}`, elo: 1500, ...id(o.inputId) };
    case 'evaluate':
      return {
        type: 'EVALUATED',
        at: now,
        metrics: { currentElo: 1500 - o.drop, baselineElo: 1500 },
        gamesPlayed: o.games,
        ...(o.version === null ? {} : { version: `v${o.version}` }),
        ...(o.outcomes === null ? {} : { outcomes: o.outcomes }),
        ...id(o.inputId),
      };
    case 'handBack': {
      const next = deferredOf(c)[0];
      if (!next) return null;
      return { ...next.event, at: now, deferredId: o.inTurn ? next.id : next.id + 1 } as ModelEvent;
    }
    case 'approve':
      return { type: 'APPROVE', at: now, by: 'alice' };
    case 'reject':
      return { type: 'REJECT', at: now, by: 'alice', note: 'no' };
    case 'manualRollback':
      return {
        type: 'ROLLBACK_REQUESTED',
        at: now,
        by: 'alice',
        reason: 'manual',
        ...(o.toVersion === null ? {} : { toVersion: `v${o.toVersion}` }),
      };
    case 'registry': {
      const rollbackId = o.thisRollback ? (c.rollback?.rollbackId ?? 'none') : 'another';
      return o.succeeded
        ? { type: 'ROLLBACK_SUCCEEDED', at: now, rollbackId }
        : { type: 'ROLLBACK_FAILED', at: now, rollbackId, error: 'registry unavailable' };
    }
    case 'acknowledge':
      return {
        type: 'PAUSE_ACKNOWLEDGED',
        at: now,
        rollbackId: o.thisRollback ? (c.lastRollback?.rollbackId ?? 'none') : 'another',
      };
    case 'cooldownTimer': {
      const deadline = cooldownDeadline(state, c, policy) ?? now;
      return { type: 'COOLDOWN_ELAPSED', at: Math.max(0, deadline + o.lateBy), deadline };
    }
    case 'approvalTimer': {
      const deadline = c.pending?.deadline ?? now;
      return { type: 'APPROVAL_EXPIRED', at: Math.max(0, deadline + o.lateBy), deadline };
    }
  }
}

/** XState's answer and the flat stepper's, from the same state, for the same event (each its own copy). */
function bothSteps<TState extends string, TContext, TEvent extends { type: string }>(
  machine: ReturnType<typeof createModelMachine> | ReturnType<typeof createTrainingMachine>,
  step: ReturnType<typeof flatStepper<TState, TContext, TEvent, OutputEvent>>,
  before: FlatSnapshot<TState, TContext>,
  event: TEvent,
  input: unknown,
) {
  const actor = createActor(machine as ReturnType<typeof createModelMachine>, {
    snapshot: (machine as ReturnType<typeof createModelMachine>).resolveState({
      value: before.value as never,
      context: before.context as never,
    }),
    input: input as never,
  });
  const xPublish: OutputEvent[] = [];
  actor.on('publish', (e) => xPublish.push(e.event));
  actor.start();
  const xEvent = structuredClone(event);
  actor.send(xEvent as never);
  const after = actor.getSnapshot();
  // Read now: the model machine keeps the answer to the last event only.
  const xOutcome = machine.outcomeOf(xEvent);
  actor.stop();
  const fEvent = structuredClone(event);
  const fPublish: OutputEvent[] = [];
  const flat = step(before, fEvent, fPublish);
  return {
    xstate: {
      value: after.value,
      context: after.context,
      publish: xPublish,
      outcome: xOutcome,
      status: after.status,
    },
    flat: {
      value: flat.value,
      context: flat.context,
      publish: fPublish,
      outcome: machine.outcomeOf(fEvent),
      status: 'active',
    },
    next: flat,
  };
}

describe('the flat stepper gives what XState gives', () => {
  for (const [name, input] of Object.entries(POLICIES)) {
    it(`model machine, ${name}: every event of random scenarios`, () => {
      const policy = modelPolicyFrom(parseConfig(input));
      const machine = createModelMachine(policy);
      const step = flatStepper<ModelStateName, ModelContext, ModelEvent, OutputEvent>(machine);
      const start = createActor(machine, { input: { modelId: 'm', configKey: 'c' } }).getSnapshot();
      const states = new Set<string>();
      fc.assert(
        fc.property(
          fc.array(op, { minLength: 1, maxLength: 60 }),
          fc.constantFrom(null, 30, 60, 90),
          (drawn, drop) => {
            // Most scenarios start with two versions promoted and bad evaluations: rollbacks and approvals.
            const ops = drop === null ? drawn : [...prologue(drop), ...drawn];
            let snapshot: FlatSnapshot<ModelStateName, ModelContext> = {
              value: start.value as ModelStateName,
              context: start.context,
            };
            let now = Date.UTC(2026, 0, 1);
            for (const o of ops) {
              if ('dt' in o) now += o.dt;
              const event = modelEvent(o, snapshot.value, snapshot.context, now, policy);
              if (event === null) continue;
              now = Math.max(now, event.at);
              // As the runtime does: once out of a rollback, the inputs kept meanwhile come back in turn.
              const events = [event];
              for (let i = 0; i < events.length; i++) {
                const e = events[i]!;
                const { xstate, flat, next } = bothSteps(machine, step, snapshot, e, {
                  modelId: 'm',
                  configKey: 'c',
                });
                expect(flat).toEqual(xstate);
                snapshot = next;
                states.add(snapshot.value);
                const kept = deferredOf(snapshot.context)[0];
                if (snapshot.value !== 'rollingBack' && kept && events.length < 40)
                  events.push({ ...kept.event, at: now, deferredId: kept.id } as ModelEvent);
              }
            }
          },
        ),
        {
          numRuns: 150,
          examples: [
            [THROUGH_COOLDOWN, 90],
            [[], 60],
            [[], 30],
          ],
        },
      );
      // The scenarios reach every state, so every state's transitions were compared.
      const required = ['cooldown', 'healthy', 'regressed', 'rolledBack', 'rollingBack'];
      if (name.includes('approval')) required.push('awaitingApproval');
      expect([...states]).toEqual(expect.arrayContaining(required));
    });
  }

  for (const autoResumeMs of [null, 3_600_000]) {
    it(`training machine, auto-resume ${autoResumeMs === null ? 'off' : 'after an hour'}`, () => {
      const machine = createTrainingMachine({ autoResumeMs });
      const step = flatStepper<TrainingStateName, TrainingContext, TrainingEvent, OutputEvent>(machine);
      const start = createActor(machine, { input: { configKey: 'c' } }).getSnapshot();
      const reachedHere = new Set<string>();
      const name = (t: { from: string; event: string; guard: string | null }) =>
        `${t.from} --${t.event} [${t.guard ?? ''}]`;
      const trainingOp = fc.oneof(
        fc.record({ op: fc.constant('pause' as const), rollback: fc.integer({ min: 1, max: 3 }), dt }),
        fc.record({ op: fc.constant('resume' as const), dt }),
        fc.record({
          op: fc.constant('autoResume' as const),
          lateBy: fc.integer({ min: -60_000, max: 60_000 }),
        }),
      );
      fc.assert(
        fc.property(fc.array(trainingOp, { minLength: 1, maxLength: 30 }), (ops) => {
          let snapshot: FlatSnapshot<TrainingStateName, TrainingContext> = {
            value: start.value as TrainingStateName,
            context: start.context,
          };
          let now = Date.UTC(2026, 0, 1);
          for (const o of ops) {
            if ('dt' in o) now += o.dt;
            const event: TrainingEvent =
              o.op === 'pause'
                ? {
                    type: 'PAUSE',
                    at: now,
                    by: 'warden',
                    reason: 'rollback',
                    modelId: 'm',
                    rollbackId: `r${o.rollback}`,
                    fromVersion: 'v2',
                    toVersion: 'v1',
                  }
                : o.op === 'resume'
                  ? { type: 'RESUME', at: now, by: 'alice' }
                  : {
                      type: 'AUTO_RESUME_ELAPSED',
                      at: Math.max(0, (snapshot.context.autoResumeAt ?? now) + o.lateBy),
                      deadline: snapshot.context.autoResumeAt ?? now,
                    };
            const taken = transitionTaken(machine, machine.resolveState(snapshot as never), event);
            if (taken) reachedHere.add(name(taken));
            const { xstate, flat, next } = bothSteps(machine, step, snapshot, event, { configKey: 'c' });
            expect(flat).toEqual(xstate);
            snapshot = next;
          }
        }),
        { numRuns: 200 },
      );
      // Every transition of the training machine (of the ones this policy has) was compared.
      const declared = declaredTransitions(machine)
        .map(name)
        .filter((t) => autoResumeMs !== null || !t.includes('AUTO_RESUME'));
      expect(declared.filter((t) => !reachedHere.has(t))).toEqual([]);
    });
  }
});

type ModelSnapshot = SnapshotFrom<ReturnType<typeof createModelMachine>>;

/**
 * Every event worth trying in a model's state: the inputs of each rule of the decision table (clean,
 * minor, severe and critical drops, game outcomes, too few games, another version), a duplicate, a kept
 * input handed back in turn and out of turn, operators, the registry and the acknowledgement for this
 * rollback and another, timers one millisecond early and on time.
 */
function eventsIn(policy: ReturnType<typeof modelPolicyFrom>) {
  return (snapshot: ModelSnapshot): ModelEvent[] => {
    const c = snapshot.context;
    const state = snapshot.value as ModelStateName;
    const at =
      Math.max(0, c.lineage.at(-1)?.promotedAt ?? 0, c.lastDetection?.at ?? 0, c.rollback?.startedAt ?? 0) +
      60_000;
    if (c.productionVersion === null) return [{ type: 'PROMOTED', at: 1000, version: 'v1', elo: 1500 }];
    const evaluated = (drop: number, extra: object = {}): ModelEvent =>
      ({
        type: 'EVALUATED',
        at,
        metrics: { currentElo: 1500 - drop, baselineElo: 1500 },
        gamesPlayed: 200,
        ...extra,
      }) as ModelEvent;
    const events: ModelEvent[] = [
      ...[0, 25, 40, 60, 90].map((drop) => evaluated(drop, { inputId: `i${c.seq}` })),
      evaluated(0, { outcomes: { wins: 45, draws: 10, losses: 45 } }),
      evaluated(0, { outcomes: { wins: 10, draws: 10, losses: 80 } }),
      evaluated(90, { gamesPlayed: 3 }),
      evaluated(90, { version: 'v9' }),
      { type: 'APPROVE', at, by: 'alice' },
      { type: 'REJECT', at, by: 'alice' },
      { type: 'ROLLBACK_REQUESTED', at, by: 'alice', reason: 'manual' },
      { type: 'ROLLBACK_REQUESTED', at, by: 'alice', reason: 'manual', toVersion: 'v9' },
      { type: 'ROLLBACK_SUCCEEDED', at, rollbackId: c.rollback?.rollbackId ?? 'another' },
      { type: 'ROLLBACK_SUCCEEDED', at, rollbackId: 'another' },
      { type: 'ROLLBACK_FAILED', at, rollbackId: c.rollback?.rollbackId ?? 'another', error: 'down' },
      { type: 'ROLLBACK_FAILED', at, rollbackId: 'another', error: 'down' },
      { type: 'PAUSE_ACKNOWLEDGED', at, rollbackId: c.lastRollback?.rollbackId ?? 'another' },
      { type: 'PAUSE_ACKNOWLEDGED', at, rollbackId: 'another' },
    ];
    if (c.lineage.length < 3)
      events.push({ type: 'PROMOTED', at, version: `v${c.lineage.length + 1}`, elo: 1500 });
    const remembered = c.recentInputIds.at(-1);
    if (remembered !== undefined) events.push(evaluated(0, { inputId: remembered }));
    const kept = deferredOf(c)[0];
    if (kept) {
      events.push({ ...kept.event, at, deferredId: kept.id } as ModelEvent);
      events.push({ ...kept.event, at, deferredId: kept.id + 1 } as ModelEvent);
    }
    const cooldown = cooldownDeadline(state, c, policy);
    if (cooldown !== null) {
      events.push({ type: 'COOLDOWN_ELAPSED', at: cooldown - 1, deadline: cooldown });
      events.push({ type: 'COOLDOWN_ELAPSED', at: Math.max(at, cooldown), deadline: cooldown });
    }
    if (c.pending) {
      events.push({ type: 'APPROVAL_EXPIRED', at: c.pending.deadline - 1, deadline: c.pending.deadline });
      events.push({
        type: 'APPROVAL_EXPIRED',
        at: Math.max(at, c.pending.deadline),
        deadline: c.pending.deadline,
      });
    }
    return events;
  };
}

describe('the flat stepper gives what XState gives on every transition a walk of the machine reaches', () => {
  const reached = new Set<string>();
  const key = (t: { from: string; event: string; guard: string | null }) =>
    `${t.from} --${t.event} [${t.guard ?? ''}]`;
  for (const [name, input] of Object.entries(POLICIES)) {
    it(`model machine, ${name}`, () => {
      const policy = modelPolicyFrom(parseConfig(input));
      const machine = createModelMachine(policy);
      const step = flatStepper<ModelStateName, ModelContext, ModelEvent, OutputEvent>(machine);
      const edges = adjacencyMapToArray(
        // @xstate/graph's types do not follow a machine that emits events; the machine is the one stepped.
        getAdjacencyMap(
          machine as never,
          {
            events: eventsIn(policy),
            serializeState: (s: unknown) => abstractModelState(s as ModelSnapshot, { admission: true }),
            input: { modelId: 'm', configKey: 'c' },
          } as never,
        ),
      ) as Array<{ state: ModelSnapshot; event: ModelEvent }>;
      for (const { state, event } of edges) {
        const taken = transitionTaken(machine, state, event);
        if (taken) reached.add(key(taken));
        const before = { value: state.value as ModelStateName, context: state.context };
        const { xstate, flat } = bothSteps(machine, step, before, event, { modelId: 'm', configKey: 'c' });
        expect(flat).toEqual(xstate);
      }
    });
  }

  it('inputs kept, one or a full queue, in every state: kept, refused, duplicates, handed back out of turn', () => {
    const machine = createModelMachine(modelPolicyFrom(parseConfig({})));
    const step = flatStepper<ModelStateName, ModelContext, ModelEvent, OutputEvent>(machine);
    const input = { modelId: 'm', configKey: 'c' };
    let snapshot: FlatSnapshot<ModelStateName, ModelContext> = {
      value: 'healthy',
      context: createActor(machine, { input }).getSnapshot().context,
    };
    const compare = (from: FlatSnapshot<ModelStateName, ModelContext>, event: ModelEvent) => {
      const taken = transitionTaken(machine, machine.resolveState(from as never), event);
      if (taken) reached.add(key(taken));
      const { xstate, flat, next } = bothSteps(machine, step, from, event, input);
      expect(flat).toEqual(xstate);
      return next;
    };
    // A manual rollback in flight, and inputs kept until the queue is full.
    let at = 1000;
    for (const event of [
      { type: 'PROMOTED', at, version: 'v1', elo: 1500, inputId: 'p1' },
      { type: 'PROMOTED', at, version: 'v2', elo: 1500, inputId: 'p2' },
      { type: 'ROLLBACK_REQUESTED', at, by: 'alice', reason: 'manual' },
    ] as ModelEvent[])
      snapshot = compare(snapshot, event);
    const queues: ModelContext[] = [];
    for (let i = 0; i <= DEFERRED_INPUT_LIMIT; i++) {
      at += 1000;
      snapshot = compare(
        snapshot,
        i % 2 === 0
          ? { type: 'EVALUATED', at, metrics: { currentElo: 1490 }, gamesPlayed: 200, inputId: `q${i}` }
          : { type: 'PROMOTED', at, version: `v${i}`, elo: 1500, inputId: `q${i}` },
      );
      if (deferredOf(snapshot.context).length === 1) queues.push(snapshot.context);
    }
    expect(deferredOf(snapshot.context)).toHaveLength(DEFERRED_INPUT_LIMIT);
    queues.push(snapshot.context);
    // Each such context in every state: the rules of admission come first and read only the queue and the
    // remembered ids, so every event here stops at one of them (an input taken would need the state's own
    // context: a pending approval, a rollback).
    for (const context of queues) {
      for (const value of MODEL_STATES) {
        const kept = deferredOf(context)[0]!;
        for (const event of [
          { type: 'EVALUATED', at, metrics: { currentElo: 1500 }, gamesPlayed: 200 },
          { type: 'PROMOTED', at, version: 'v99', elo: 1500 },
          { type: 'PROMOTED', at, version: 'v99', elo: 1500, inputId: 'p2' },
          { type: 'EVALUATED', at, metrics: { currentElo: 1500 }, gamesPlayed: 200, inputId: 'p2' },
          { ...kept.event, at, deferredId: kept.id + 1 },
          { type: 'PROMOTED', at, version: 'v99', elo: 1500, deferredId: kept.id + 1 },
        ] as ModelEvent[])
          compare({ value, context }, event);
      }
    }
  });

  it('together, the walks reach every declared transition of the model machine', () => {
    const declared = declaredTransitions(createModelMachine(modelPolicyFrom(parseConfig({})))).map(key);
    expect(declared.filter((t) => !reached.has(t))).toEqual([]);
  });
});

describe('a machine outside what the flat stepper steps is refused when its stepper is made', () => {
  const base = setup({
    types: { context: {} as { n: number }, events: {} as { type: 'GO' } },
    guards: { always: () => true },
  });
  const cases = {
    'an entry action': base.createMachine({
      context: { n: 0 },
      initial: 'a',
      states: { a: { entry: () => undefined, on: { GO: 'b' } }, b: {} },
    }),
    'nested states': base.createMachine({
      context: { n: 0 },
      initial: 'a',
      states: { a: { initial: 'x', states: { x: {} } } },
    }),
    'a delayed transition': base.createMachine({
      context: { n: 0 },
      initial: 'a',
      states: { a: { after: { 1000: 'b' } }, b: {} },
    }),
    'an eventless transition': base.createMachine({
      context: { n: 0 },
      initial: 'a',
      states: { a: { always: 'b' }, b: {} },
    }),
    'an action that is not a pure action': base.createMachine({
      context: { n: 0 },
      initial: 'a',
      states: { a: { on: { GO: { actions: () => undefined } } } },
    }),
    'an inline guard': base.createMachine({
      context: { n: 0 },
      initial: 'a',
      states: { a: { on: { GO: { guard: () => true, target: 'b' } } }, b: {} },
    }),
  };
  for (const [what, machine] of Object.entries(cases)) {
    it(what, () => {
      expect(() => flatStepper(machine)).toThrow(/cannot be stepped flat|not supported|not a pure action/);
    });
  }
});
