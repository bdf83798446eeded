/**
 * Model-based tests of the training-config machine: createTestModel walks it; each path is driven through
 * the real runtime (operator commands, a rollback event on the bus, the auto-resume timer on a manual
 * clock), checking state, what the trainer is told, what was persisted and what was published.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, getNextSnapshot, type SnapshotFrom } from 'xstate';
import { createTestModel } from '@xstate/graph';
import {
  createTrainingMachine,
  stepTraining,
  type TrainingMachine,
} from '../../src/machines/training-machine.ts';
import { declaredTransitions, transitionTaken, type DeclaredTransition } from '../../src/machines/walk.ts';
import type { TrainingEvent, TrainingStateName } from '../../src/machines/training-types.ts';
import { OUTPUT_EVENTS } from '../../src/domain/events.ts';
import { startTestWarden, type TestWarden } from '../support/test-warden.ts';

type Snapshot = SnapshotFrom<TrainingMachine>;
const CONFIG = 'hex8_2p';
const AUTO_RESUME_MS = 3_600_000;
const policy = { autoResumeMs: AUTO_RESUME_MS };
const machine = createTrainingMachine(policy);
const DECLARED = declaredTransitions(machine);
const ACCEPTS = new Set(DECLARED.map((t) => `${t.from}:${t.event}`));
/** The runtime never fires a timer before its deadline: test/machines/guards.test.ts takes it alone. */
const NOT_THROUGH_THE_RUNTIME = new Set(['isAutoResumeNotDue']);
/** The API refuses to resume a running config (409) before the actor sees it. */
const REFUSED_BY_THE_API = new Set(['running --RESUME--> running']);
const show = (t: DeclaredTransition) =>
  `${t.from} --${t.event}${t.guard ? ` [${t.guard}]` : ''}--> ${t.target ?? t.from}`;

function eventsFor(snapshot: Snapshot): TrainingEvent[] {
  const c = snapshot.context;
  const at = (c.since ?? 0) + 1000;
  const all: TrainingEvent[] = [
    { type: 'PAUSE', at, by: 'alice', reason: 'bad data' },
    {
      type: 'PAUSE',
      at,
      by: 'warden',
      reason: 'rollback',
      modelId: CONFIG,
      rollbackId: `r${c.seq}`,
      fromVersion: 'v2',
      toVersion: 'v1',
    },
    { type: 'RESUME', at, by: 'bob' },
  ];
  if (c.autoResumeAt !== null) all.push({ type: 'AUTO_RESUME_ELAPSED', at: c.autoResumeAt });
  // The same rollback delivered again (a redelivery of its event).
  const last = c.rollbackIds.at(-1);
  if (last !== undefined) {
    all.push({ type: 'PAUSE', at, by: 'warden', reason: 'rollback', modelId: CONFIG, rollbackId: last });
  }
  return all.filter((e) => ACCEPTS.has(`${String(snapshot.value)}:${e.type}`));
}

const model = createTestModel(machine, {
  events: eventsFor as never,
  input: { configKey: CONFIG },
  serializeState: (s: Snapshot) => JSON.stringify([s.value, s.context.rollbackIds.length > 0]),
} as never);

function label(e: TrainingEvent): string {
  return e.type === 'PAUSE' ? `PAUSE(${e.rollbackId ? `rollback ${e.rollbackId}` : 'operator'})` : e.type;
}

async function drive(tw: TestWarden, event: TrainingEvent): Promise<void> {
  if (event.type === 'PAUSE' && event.rollbackId === undefined)
    await tw.warden.pause(CONFIG, { by: event.by, reason: event.reason });
  else if (event.type === 'PAUSE') {
    // As the model actor tells it: a PROMOTION_ROLLED_BACK on the bus.
    await tw.bus.publish(`warden.evt.promotion_rolled_back.${CONFIG}`, {
      event_id: `e-${event.rollbackId}`,
      timestamp: event.at / 1000,
      rollback_id: event.rollbackId,
      detection_id: null,
      model_id: CONFIG,
      config_key: CONFIG,
      from_version: 'v2',
      to_version: 'v1',
      from_metrics: { elo: null, win_rate: null },
      to_metrics: { elo: null, win_rate: null },
      reason: 'test',
      triggered_by: 'manual',
      by: 'warden',
      action_required: 'pause_training',
    });
  } else if (event.type === 'RESUME') {
    const status = tw.warden.trainingStatus(CONFIG).status;
    if (status === 'paused') await tw.warden.resume(CONFIG, { by: event.by });
    else await expect(tw.warden.resume(CONFIG, { by: event.by })).rejects.toMatchObject({ code: 'conflict' });
  } else {
    tw.clock.advance(AUTO_RESUME_MS);
  }
  await tw.warden.idle();
}

describe('training-config machine: every transition, through the real runtime', () => {
  let tw: TestWarden | null = null;
  afterEach(async () => {
    await tw?.close();
    tw = null;
  });

  // Simple paths never repeat a state; the redelivered rollback is a loop, so its paths are added here.
  const rollback = (rollbackId: string, at: number): TrainingEvent => ({
    type: 'PAUSE',
    at,
    by: 'warden',
    reason: 'rollback',
    modelId: CONFIG,
    rollbackId,
    fromVersion: 'v2',
    toVersion: 'v1',
  });
  const initial = createActor(machine, { input: { configKey: CONFIG } }).getSnapshot();
  const loops = [
    [rollback('r0', 1000), rollback('r0', 2000)],
    [rollback('r0', 1000), { type: 'RESUME', at: 2000, by: 'bob' } as TrainingEvent, rollback('r0', 3000)],
  ].map((events) => {
    const steps: Array<{ event: TrainingEvent; state: Snapshot }> = [];
    let state = initial;
    for (const event of events) {
      state = getNextSnapshot(machine, state, event);
      steps.push({ event, state });
    }
    return { steps: [{ state: initial, event: { type: 'xstate.init' } }, ...steps] };
  });
  const paths = [...model.getSimplePaths(), ...loops];
  const covered = new Set<string>();
  for (const path of paths) {
    const steps = path.steps.slice(1);
    const guards: string[] = [];
    for (let i = 0; i < steps.length; i++) {
      const from = (i === 0 ? path.steps[0]!.state : steps[i - 1]!.state) as Snapshot;
      const taken = transitionTaken(machine, from, steps[i]!.event as TrainingEvent)!;
      covered.add(show(taken));
      guards.push(taken.guard ? `[${taken.guard}]` : '');
    }
    const name = [
      String(path.steps[0]!.state.value),
      ...steps.map((s, i) => `-${label(s.event as TrainingEvent)}${guards[i]}-> ${String(s.state.value)}`),
    ].join(' ');
    it(name, async () => {
      tw = await startTestWarden({ training: { autoResumeSeconds: AUTO_RESUME_MS / 1000 } });
      let before = path.steps[0]!.state as Snapshot;
      for (const step of steps) {
        const event = step.event as TrainingEvent;
        const expected = stepTraining(before.value as TrainingStateName, before.context, event, policy);
        const mark = tw.bus.log.length;
        await drive(tw, event);
        const state = step.state.value as TrainingStateName;
        expect(tw.warden.trainingStatus(CONFIG)).toMatchObject({
          status: state,
          may_train: state === 'running',
        });
        const stored = (await tw.warden.store.loadActor('training', CONFIG))?.snapshot as
          { snapshot: { value: string } } | undefined;
        expect(stored?.snapshot.value).toBe(state);
        const published = tw.bus
          .since(mark)
          .map((m) => m.subject.split('.'))
          .filter(([, area, kind]) => (area === 'evt' && kind!.startsWith('training_')) || area === 'int')
          .map(([, , kind]) => kind);
        expect(published).toEqual(expected.publish.map((p) => OUTPUT_EVENTS[p.type].kind));
        before = step.state as Snapshot;
      }
    });
  }

  it('the walk covers every declared transition, guard by guard', () => {
    const declared = DECLARED.filter((t) => !NOT_THROUGH_THE_RUNTIME.has(t.guard ?? ''))
      .map(show)
      .filter((t) => !REFUSED_BY_THE_API.has(t));
    expect(declared.filter((t) => !covered.has(t))).toEqual([]);
  });
});
