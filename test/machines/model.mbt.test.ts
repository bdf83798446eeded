/**
 * Model-based tests of the model machine: @xstate/graph's createTestModel walks the pure machine; for
 * every transition the diagram declares we take the shortest path that ends with it, then drive the real
 * runtime (embedded Warden, SQLite, manual clock, a registry the test settles) along that path and check,
 * after every step, the state, what was persisted and what was published.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, getNextSnapshot, type SnapshotFrom } from 'xstate';
import { TestModel } from '@xstate/graph';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { createModelMachine, stepModel, type ModelMachine } from '../../src/machines/model-machine.ts';
import { declaredTransitions, transitionTaken, type DeclaredTransition } from '../../src/machines/walk.ts';
import { modelPolicyFrom, type ModelPolicy } from '../../src/machines/model-policy.ts';
import { cooldownDeadline, lastKnownGood } from '../../src/machines/model-logic.ts';
import {
  MODEL_STATES,
  type ModelContext,
  type ModelEvent,
  type ModelStateName,
} from '../../src/machines/model-types.ts';
import { OUTPUT_EVENTS } from '../../src/domain/events.ts';
import { startTestWarden, type TestWarden } from '../support/test-warden.ts';
import { abstractModelState } from '../support/model-walk.ts';

type Snapshot = SnapshotFrom<ModelMachine>;
const MODEL = 'hex8_2p';
const ACK = 'warden.int.pause_acknowledged.*';

interface Variant {
  readonly config: ConfigInput;
  /** Evaluations carry game outcomes (the statistical detector decides) instead of Elo alone. */
  readonly outcomes: boolean;
}

const VARIANTS: Record<string, Variant> = {
  'threshold mode, automatic policy': { config: { detection: { mode: 'threshold' } }, outcomes: false },
  'threshold mode, approval required, expiry rejects': {
    config: { detection: { mode: 'threshold' }, approval: { requireForSevere: true, onTimeout: 'reject' } },
    outcomes: false,
  },
  // Statistical evidence that grades a drop also crosses the SPRT: `regressed` (watch) is reached by an
  // evaluation without outcomes, which the statistical mode judges by the threshold rule.
  'statistical mode, automatic policy': { config: { detection: { mode: 'statistical' } }, outcomes: true },
  'statistical mode, approval required': {
    config: { detection: { mode: 'statistical' }, approval: { requireForSevere: true, onTimeout: 'reject' } },
    outcomes: true,
  },
  // One automatic rollback a day: the second rollback decision is held by the rate limit.
  'threshold mode, one automatic rollback a day': {
    config: { detection: { mode: 'threshold' }, autoRollbackLimit: { max: 1 } },
    outcomes: false,
  },
  'statistical mode, one automatic rollback a day': {
    config: { detection: { mode: 'statistical' }, autoRollbackLimit: { max: 1 } },
    outcomes: true,
  },
};

/** Game outcomes of one 100-game window against the baseline, by how bad they are. */
const WINDOWS = {
  even: { wins: 45, draws: 10, losses: 45 },
  bad: { wins: 15, draws: 10, losses: 75 },
} as const;

function lastTime(c: ModelContext): number {
  return Math.max(
    0,
    ...c.lineage.map((e) => e.promotedAt),
    c.lastDetection?.at ?? 0,
    c.pending?.requestedAt ?? 0,
    c.rollback?.startedAt ?? 0,
    c.lastRollback?.completedAt ?? 0,
  );
}

const DECLARED = declaredTransitions(createModelMachine(modelPolicyFrom(parseConfig({}))));
const ACCEPTS = new Set(DECLARED.map((t) => `${t.from}:${t.event}`));

/**
 * Guards that no input, operator, registry or timer can make hold through the runtime, by design: the
 * runtime hands kept inputs back in turn and never 33 at once beyond the queue, reports only its own
 * rollback's result and acknowledgement, and never fires a timer before its deadline; an input without an
 * event_id is never a duplicate. test/machines/guards.test.ts takes each of them alone.
 */
const NOT_THROUGH_THE_RUNTIME = new Set([
  'isHandBackOutOfTurn',
  'isDuplicateInput',
  'isQueueFull',
  'mustWaitForRollback',
  'isAnotherRollback',
  'isAckOfAnotherRollback',
  'isBeforeApprovalDeadline',
  'isCooldownNotOver',
  // The API refuses a manual rollback that cannot be done (404/409) before the actor sees it.
  'isManualRollbackImpossible',
]);

const show = (t: DeclaredTransition) =>
  `${t.from} --${t.event}${t.guard ? ` [${t.guard}]` : ''}--> ${t.target ?? t.from}`;

/** The concrete events a test may send in a snapshot: only those the state accepts. */
function eventsFor(policy: ModelPolicy, outcomes: boolean) {
  return (snapshot: Snapshot): ModelEvent[] => {
    const c = snapshot.context;
    const state = snapshot.value as ModelStateName;
    const at = lastTime(c) + 1000;
    if (c.productionVersion === null) return [{ type: 'PROMOTED', at: 1000, version: 'v1', elo: 1500 }];
    const base = c.baseline.elo ?? 1500;
    const evaluated = (drop: number): Extract<ModelEvent, { type: 'EVALUATED' }> => ({
      type: 'EVALUATED',
      at,
      metrics: { currentElo: base - drop },
      gamesPlayed: 100,
    });
    const withOutcomes = (window: keyof typeof WINDOWS): ModelEvent => ({
      type: 'EVALUATED',
      at,
      metrics: {},
      gamesPlayed: 100,
      outcomes: WINDOWS[window],
    });
    const evaluations = outcomes
      ? [withOutcomes('even'), withOutcomes('bad'), evaluated(25)]
      : [evaluated(0), evaluated(25), evaluated(60), evaluated(80)];
    // Judged before any threshold: too few games, another version.
    evaluations.push({ ...evaluated(80), gamesPlayed: 10 }, { ...evaluated(80), version: 'v9' });
    const candidates: ModelEvent[] = [
      ...evaluations,
      { type: 'APPROVE', at, by: 'alice' },
      { type: 'REJECT', at, by: 'alice' },
    ];
    if (c.lineage.length < 3)
      candidates.push({ type: 'PROMOTED', at, version: `v${c.lineage.length + 1}`, elo: 1500 });
    if (lastKnownGood(c) !== null)
      candidates.push({ type: 'ROLLBACK_REQUESTED', at, by: 'alice', reason: 'manual' });
    if (c.rollback) {
      candidates.push({ type: 'ROLLBACK_SUCCEEDED', at, rollbackId: c.rollback.rollbackId });
      candidates.push({
        type: 'ROLLBACK_FAILED',
        at,
        rollbackId: c.rollback.rollbackId,
        error: 'registry unavailable',
      });
    }
    if (c.lastRollback)
      candidates.push({ type: 'PAUSE_ACKNOWLEDGED', at, rollbackId: c.lastRollback.rollbackId });
    const deadline = cooldownDeadline(state, c, policy);
    if (deadline !== null) candidates.push({ type: 'COOLDOWN_ELAPSED', at: Math.max(at, deadline) });
    if (c.pending) candidates.push({ type: 'APPROVAL_EXPIRED', at: Math.max(at, c.pending.deadline) });
    return candidates.filter((e) => ACCEPTS.has(`${state}:${e.type}`));
  };
}

function label(event: ModelEvent): string {
  if (event.type !== 'EVALUATED') return event.type;
  if (event.version !== undefined) return `EVALUATED(version ${event.version})`;
  if (event.gamesPlayed < 50) return `EVALUATED(${event.gamesPlayed} games)`;
  if (event.outcomes)
    return `EVALUATED(W${event.outcomes.wins}/D${event.outcomes.draws}/L${event.outcomes.losses})`;
  const drop = 1500 - (event.metrics.currentElo ?? 1500);
  return `EVALUATED(drop ${drop})`;
}

interface PlannedPath {
  readonly transition: string;
  readonly steps: Array<{ event: ModelEvent; before: Snapshot; after: Snapshot }>;
  readonly taken: DeclaredTransition;
}

/** For every declared transition, the shortest path (from the walk) that ends by taking it. */
function planPaths({ config, outcomes }: Variant): { paths: PlannedPath[]; uncovered: string[] } {
  const policy = modelPolicyFrom(parseConfig(config));
  const machine = createModelMachine(policy);
  const events = eventsFor(policy, outcomes);
  // TestModel itself rather than createTestModel: the latter adds a bare `{type}` event for every event a
  // state accepts that `events` does not list, and our events carry required fields.
  const model = new TestModel(
    machine as never,
    {
      events: (s: Snapshot) => events(s),
      serializeState: (s: Snapshot) => abstractModelState(s),
      input: { modelId: MODEL, configKey: MODEL },
    } as never,
  );
  const shortest = model.getShortestPaths({ allowDuplicatePaths: true });
  const initial = createActor(machine, { input: { modelId: MODEL, configKey: MODEL } }).getSnapshot();
  const byTransition = new Map<string, PlannedPath>();
  for (const path of shortest.sort((a, b) => a.steps.length - b.steps.length)) {
    // The walk's snapshots are representatives of abstract states: replay the path concretely, choosing at
    // each step the event of the same kind that the concrete snapshot offers (its ids, its deadlines).
    const steps: PlannedPath['steps'] = [];
    let before = initial;
    let replayed = true;
    for (const step of path.steps.slice(1)) {
      const wanted = label(step.event as ModelEvent);
      const event = events(before).find((e) => label(e) === wanted);
      if (!event) {
        replayed = false;
        break;
      }
      const after = getNextSnapshot(machine, before, event);
      steps.push({ event, before, after });
      before = after;
    }
    if (!replayed) continue;
    for (const event of events(before)) {
      const taken = transitionTaken(machine, before, event);
      if (!taken) continue;
      const key = show(taken);
      if (byTransition.has(key)) continue;
      const after = getNextSnapshot(machine, before, event);
      byTransition.set(key, { transition: key, steps: [...steps, { event, before, after }], taken });
    }
  }
  const uncovered = DECLARED.filter((t) => !NOT_THROUGH_THE_RUNTIME.has(t.guard ?? ''))
    .map(show)
    .filter((key) => !byTransition.has(key));
  return { paths: [...byTransition.values()], uncovered };
}

/** Applies one path step to the real runtime, as a user or the world would cause it. */
async function drive(tw: TestWarden, event: ModelEvent): Promise<void> {
  const w = tw.warden;
  switch (event.type) {
    case 'PROMOTED':
      await w.promote({ model_id: MODEL, version: event.version, elo: event.elo });
      break;
    case 'EVALUATED':
      await w.evaluate({
        model_id: MODEL,
        version: event.version,
        current_elo: event.metrics.currentElo,
        games_played: event.gamesPlayed,
        ...event.outcomes,
      });
      break;
    case 'APPROVE':
      await w.approve(MODEL, { by: event.by });
      break;
    case 'REJECT':
      await w.reject(MODEL, { by: event.by });
      break;
    case 'ROLLBACK_REQUESTED':
      // The API refuses a second rollback before the machine would (the machine answers it as stale).
      if (w.status(MODEL).models[0]!.state === 'rollingBack') {
        await expect(w.rollback(MODEL, { by: event.by, reason: event.reason })).rejects.toMatchObject({
          code: 'conflict',
        });
      } else {
        await w.rollback(MODEL, { by: event.by, reason: event.reason });
      }
      break;
    case 'ROLLBACK_SUCCEEDED':
      tw.registry.settle('succeed');
      break;
    case 'ROLLBACK_FAILED':
      tw.registry.settle('fail', event.error);
      break;
    case 'PAUSE_ACKNOWLEDGED':
      await tw.bus.release(ACK);
      tw.bus.hold(ACK);
      break;
    case 'COOLDOWN_ELAPSED':
    case 'APPROVAL_EXPIRED': {
      const model = w.status(MODEL).models[0]!;
      const deadline =
        event.type === 'APPROVAL_EXPIRED' ? model.pending_approval!.deadline : model.cooldown_until!;
      const due = Math.max(Date.parse(deadline), tw.clock.now());
      // In rolledBack the deadline also waits for the pause acknowledgement's grace period.
      tw.clock.advance(due - tw.clock.now() + (model.state === 'rolledBack' ? 30_000 : 0));
      break;
    }
  }
  await w.idle();
}

const modelKinds = (messages: Array<{ subject: string }>) =>
  messages
    .map((m) => m.subject.split('.'))
    .filter(([, area, kind]) => area === 'evt' && kind !== 'training_paused' && kind !== 'training_resumed')
    .map(([, , kind]) => kind);

describe('model machine: every transition, through the real runtime', () => {
  let current: TestWarden | null = null;
  afterEach(async () => {
    await current?.close();
    current = null;
  });

  for (const [name, variant] of Object.entries(VARIANTS)) {
    const { paths } = planPaths(variant);
    const { config } = variant;
    const policy = modelPolicyFrom(parseConfig(config));
    const machine = createModelMachine(policy);
    describe(name, () => {
      for (const path of paths) {
        const guardOf = (s: PlannedPath['steps'][number]) =>
          transitionTaken(machine, s.before, s.event)?.guard;
        const name = `${path.transition}   via ${path.steps.map((s) => `${String(s.before.value)} -${label(s.event)}${guardOf(s) ? `[${guardOf(s)}]` : ''}->`).join(' ')} ${String(path.steps.at(-1)!.after.value)}`;
        it(name, async () => {
          current = await startTestWarden(config);
          const tw = current;
          tw.bus.hold(ACK);
          for (const { event, before, after } of path.steps) {
            const expected = stepModel(before.value as ModelStateName, before.context, event, policy);
            const mark = tw.bus.log.length;
            await drive(tw, event);
            const status = tw.warden.status(MODEL);
            const model = status.models[0]!;
            // The state, as the runtime and as the store see it.
            expect(model.state, `after ${label(event)}`).toBe(after.value);
            const stored = (await tw.warden.store.loadActor('model', MODEL))!.snapshot as {
              snapshot: { value: string };
            };
            expect(stored.snapshot.value).toBe(after.value);
            // What was published for the model: exactly what the pure step decided, in order.
            const published = modelKinds(tw.bus.since(mark));
            expect(published).toEqual(
              expected.publish
                .map((p) => OUTPUT_EVENTS[p.type].kind)
                .filter((k) => k !== 'pause_acknowledged'),
            );
            // Every rollback pauses the training config.
            if (expected.publish.some((p) => p.type === 'PROMOTION_ROLLED_BACK')) {
              expect(tw.warden.trainingStatus(MODEL).status).toBe('paused');
              expect(tw.registry.pointers.get(MODEL)?.version).toBe(after.context.productionVersion);
            }
          }
        });
      }
    });
  }

  for (const mode of ['threshold', 'statistical']) {
    it(`the walk reaches every state and every declared transition in ${mode} mode (across its policy variants)`, () => {
      const variants = Object.entries(VARIANTS)
        .filter(([name]) => name.startsWith(mode))
        .map(([, v]) => v);
      const uncoveredInAll = variants
        .map((v) => new Set(planPaths(v).uncovered))
        .reduce((a, b) => new Set([...a].filter((t) => b.has(t))));
      expect([...uncoveredInAll]).toEqual([]);
      const reached = new Set(
        variants.flatMap((v) => planPaths(v).paths.map((p) => String(p.steps.at(-1)!.after.value))),
      );
      expect([...reached].sort()).toEqual([...MODEL_STATES].sort());
    });
  }
});
