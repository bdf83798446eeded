/**
 * Issue 8, findings 2 and 3, in the runtime: a step that throws fails only its own input (a stable code and
 * an error id, no internals, the committed state kept, the service alive), and an input that arrives while
 * a rollback is in flight is kept and applied, in order, once the rollback ends.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import { ActorRuntime, type RuntimeDeps } from '../../src/actors/runtime.ts';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { MemoryBus } from '../../src/embedded/memory-bus.ts';
import { SqliteStore } from '../../src/embedded/sqlite-store.ts';
import { type ModelMachine } from '../../src/machines/model-machine.ts';
import { createTrainingMachine } from '../../src/machines/training-machine.ts';
import { modelPolicyFrom, type ModelPolicy } from '../../src/machines/model-policy.ts';
import type { ModelEvent } from '../../src/machines/model-types.ts';
import { ConflictError, WardenError } from '../../src/domain/errors.ts';
import { FakeRegistry } from '../support/fake-registry.ts';
import { makeDataDir, startTestWarden, type TestWarden } from '../support/test-warden.ts';
import { createModelMachine } from '../../src/machines/model-machine.ts';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import type { CommitBatch, StateStore } from '../../src/actors/ports.ts';

const POISON = 6666;

/** A runtime of this policy's machines over `store`, with fakes for the rest; `deps` replaces any of them. */
function runtimeOf(policy: ModelPolicy, store: StateStore, deps: Partial<RuntimeDeps> = {}): ActorRuntime {
  return new ActorRuntime({
    modelMachine: createModelMachine(policy),
    trainingMachine: createTrainingMachine({ autoResumeMs: null }),
    modelPolicy: policy,
    store,
    registry: new FakeRegistry(),
    bus: new MemoryBus(),
    clock: new ManualClock(),
    logger: pino({ level: 'silent' }),
    prefix: 'warden',
    ...deps,
  });
}

function poisonedRuntime() {
  const policy = modelPolicyFrom(parseConfig({ detection: { mode: 'threshold' } }));
  // The real model machine, except that an evaluation at Elo 6666 throws deep inside a guard.
  const real = createModelMachine(policy);
  const provided = real.provide({
    guards: {
      isOtherVersion: ({ event }) => {
        if (event.type === 'EVALUATED' && event.metrics.currentElo === POISON) {
          throw new RangeError('root finder: no sign change in [-1e9, 1e9] (guard leadsTo)');
        }
        return false;
      },
    },
  });
  const modelMachine = Object.assign(provided, { outcomeOf: real.outcomeOf }) as unknown as ModelMachine;
  const logged: unknown[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => logged.push(JSON.parse(line)) });
  const store = new SqliteStore(':memory:');
  const runtime = runtimeOf(policy, store, {
    modelMachine,
    logger,
  });
  return { runtime, store, logged };
}

const evaluated = (currentElo: number, at: number): ModelEvent => ({
  type: 'EVALUATED',
  at,
  metrics: { currentElo },
  gamesPlayed: 100,
});

describe('a failing step fails only its input', () => {
  it('answers with a stable code and an error id, keeps the committed state, and goes on', async () => {
    const { runtime, store, logged } = poisonedRuntime();
    await runtime.start();
    runtime.startPublishing();
    await runtime.dispatchModel(
      'm',
      { type: 'PROMOTED', at: 1, version: 'v1', elo: 1500 },
      { configKey: 'm' },
    );
    await runtime.dispatchModel('m', evaluated(1490, 2));
    const before = runtime.persistedSnapshot('model', 'm');

    const failure = await runtime.dispatchModel('m', evaluated(POISON, 3)).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(WardenError);
    const error = failure as WardenError;
    expect(error.code).toBe('internal');
    expect(error.message).toMatch(/internal error [0-9a-f-]{36}/);
    // The answer names no internals; the log has them, under the same id.
    expect(error.message).not.toMatch(/root finder|leadsTo|guard/);
    const errorId = /internal error ([0-9a-f-]{36})/.exec(error.message)![1];
    expect(logged).toContainEqual(expect.objectContaining({ errorId }));
    expect(JSON.stringify(logged)).toContain('root finder');

    // The actor is back on its committed state and takes the next input.
    expect(runtime.model('m')!.state).toBe('healthy');
    expect(runtime.persistedSnapshot('model', 'm')).toEqual(before);
    const next = await runtime.dispatchModel('m', evaluated(1420, 4));
    expect(next.kind).toBe('regression');
    await runtime.idle();
    await store.close();
  });

  it('many failing inputs in one batch beside good ones: each good one has its effect', async () => {
    const { runtime, store } = poisonedRuntime();
    await runtime.start();
    runtime.startPublishing();
    for (const id of ['a', 'b', 'c'])
      await runtime.dispatchModel(
        id,
        { type: 'PROMOTED', at: 1, version: 'v1', elo: 1500 },
        { configKey: id },
      );
    const results = await Promise.allSettled(
      ['a', 'b', 'c'].flatMap((id, i) => [
        runtime.dispatchModel(id, evaluated(POISON, 10 + i)),
        runtime.dispatchModel(id, { type: 'PROMOTED', at: 20 + i, version: 'v2', elo: 1600 }),
      ]),
    );
    expect(results.map((r) => r.status)).toEqual([
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    await runtime.idle();
    for (const id of ['a', 'b', 'c']) expect(runtime.model(id)!.context.productionVersion).toBe('v2');
    await store.close();
  });
});

describe('inputs during a rollback are kept, not dropped (finding 3)', () => {
  let tw: TestWarden | null = null;
  afterEach(async () => {
    await tw?.close();
    tw = null;
  });

  const promotedVersions = (t: TestWarden) => t.warden.status('m').models[0]!.versions.map((v) => v.version);

  it('a promotion during a rollback is applied when the rollback ends, and an evaluation of the old version stays with it', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' } });
    for (const version of ['v1', 'v2']) await tw.warden.promote({ model_id: 'm', version, elo: 1500 });
    expect((await tw.warden.evaluate({ model_id: 'm', current_elo: 1400, games_played: 100 })).state).toBe(
      'rollingBack',
    );
    // Measured on v2 while it was being rolled back: it must not count against v1 or v3.
    const late = await tw.warden.evaluate({ model_id: 'm', current_elo: 1300, games_played: 100 });
    expect(late.outcome).toEqual({ kind: 'deferred', state: 'rollingBack', waiting: 1 });
    const promoted = await tw.warden.promote({ model_id: 'm', version: 'v3', elo: 1520, event_id: 'p3' });
    expect(promoted.outcome).toEqual({ kind: 'deferred', state: 'rollingBack', waiting: 2 });
    // The same promotion again (a redelivery) is a duplicate, not a second deferred input.
    const again = await tw.warden.promote({ model_id: 'm', version: 'v3', elo: 1520, event_id: 'p3' });
    expect(again.outcome.kind).toBe('duplicate');

    tw.registry.settle('succeed');
    await tw.warden.idle();
    const model = tw.warden.status('m').models[0]!;
    expect(model.production_version).toBe('v3');
    expect(model.state).toBe('healthy');
    expect(promotedVersions(tw)).toEqual(['v1', 'v2', 'v3']);
    expect(tw.bus.log.filter((m) => m.subject.includes('.evt.promotion_rolled_back.'))).toHaveLength(1);
    expect(tw.bus.log.filter((m) => m.subject.includes('.evt.regression_detected.'))).toHaveLength(1);
    expect(tw.warden.trainingStatus('m').status).toBe('paused');
  });

  it('kept inputs survive a crash and are applied after the restarted rollback', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' } });
    for (const version of ['v1', 'v2']) await tw.warden.promote({ model_id: 'm', version, elo: 1500 });
    await tw.warden.evaluate({ model_id: 'm', current_elo: 1400, games_played: 100 });
    await tw.warden.promote({ model_id: 'm', version: 'v3', elo: 1520 });
    await tw.warden.idle();
    tw = await tw.crash();
    expect(tw.warden.status('m').models[0]!.state).toBe('rollingBack');
    tw.registry.settle('succeed');
    await tw.warden.idle();
    expect(tw.warden.status('m').models[0]!.production_version).toBe('v3');
    expect(tw.registry.applied.map((r) => [r.fromVersion, r.toVersion])).toEqual([['v2', 'v1']]);
  });

  it('a failed rollback hands the kept inputs back too, in order', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' } });
    for (const version of ['v1', 'v2']) await tw.warden.promote({ model_id: 'm', version, elo: 1500 });
    await tw.warden.evaluate({ model_id: 'm', current_elo: 1400, games_played: 100 });
    await tw.warden.promote({ model_id: 'm', version: 'v3', elo: 1520 });
    await tw.warden.promote({ model_id: 'm', version: 'v4', elo: 1530 });
    tw.registry.settle('fail', 'registry unavailable');
    await tw.warden.idle();
    expect(tw.warden.status('m').models[0]!.production_version).toBe('v4');
    expect(promotedVersions(tw)).toEqual(['v1', 'v2', 'v3', 'v4']);
  });

  it('beyond 32 kept inputs the model answers busy (retryable), and the kept ones are all applied', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' } });
    for (const version of ['v1', 'v2']) await tw.warden.promote({ model_id: 'm', version, elo: 1500 });
    await tw.warden.evaluate({ model_id: 'm', current_elo: 1400, games_played: 100 });
    for (let i = 3; i < 35; i++) await tw.warden.promote({ model_id: 'm', version: `v${i}`, elo: 1500 });
    await expect(tw.warden.promote({ model_id: 'm', version: 'v35', elo: 1500 })).rejects.toMatchObject({
      code: 'unavailable',
      retryable: true,
    });
    tw.registry.settle('succeed');
    await tw.warden.idle();
    expect(tw.warden.status('m').models[0]!.production_version).toBe('v34');
    await tw.warden.promote({ model_id: 'm', version: 'v35', elo: 1500 });
    expect(tw.warden.status('m').models[0]!.production_version).toBe('v35');
  });

  it('stopping does not wait without bound for a registry that never answers; the rollback resumes on start', async () => {
    const policy = modelPolicyFrom(parseConfig({ detection: { mode: 'threshold' } }));
    const dir = await makeDataDir();
    const registry = new FakeRegistry();
    const make = (store: SqliteStore) =>
      runtimeOf(policy, store, {
        registry,
        registryStopWaitMs: 50,
      });
    const store = new SqliteStore(join(dir, 'warden.db'));
    const runtime = make(store);
    await runtime.start();
    runtime.startPublishing();
    for (const version of ['v1', 'v2'])
      await runtime.dispatchModel('m', { type: 'PROMOTED', at: 1, version, elo: 1500 }, { configKey: 'm' });
    await runtime.dispatchModel('m', evaluated(1400, 2));
    expect(registry.pendingCount()).toBe(1);
    await runtime.stop();
    await store.close();
    registry.abandonPending();

    const again = new SqliteStore(join(dir, 'warden.db'));
    const restarted = make(again);
    await restarted.start();
    restarted.startPublishing();
    expect(restarted.model('m')!.state).toBe('rollingBack');
    expect(registry.pendingCount()).toBe(1);
    registry.settle('succeed');
    await restarted.idle();
    expect(restarted.model('m')!.state).not.toBe('rollingBack');
    expect(registry.applied).toHaveLength(1);
    registry.autoSettle = true;
    await restarted.stop();
    await again.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('stopping while the bus refuses every publication (NATS away)', () => {
  it('waits at most its bound, keeps the events stored, and the next start publishes them', async () => {
    const policy = modelPolicyFrom(parseConfig({ detection: { mode: 'threshold' } }));
    const dir = await makeDataDir();
    const make = (store: SqliteStore, bus: MemoryBus) =>
      runtimeOf(policy, store, {
        registry: new FakeRegistry(true),
        bus,
        registryStopWaitMs: 300,
      });
    class RefusingBus extends MemoryBus {
      override async publish(): Promise<void> {
        throw new Error('NATS is away');
      }
    }
    const store = new SqliteStore(join(dir, 'warden.db'));
    const runtime = make(store, new RefusingBus());
    await runtime.start();
    runtime.startPublishing();
    for (const version of ['v1', 'v2'])
      await runtime.dispatchModel('m', { type: 'PROMOTED', at: 1, version, elo: 1500 }, { configKey: 'm' });
    await runtime.dispatchModel('m', evaluated(1400, 2));
    // Bounded, and without spinning: the event loop keeps turning (this timer fires meanwhile).
    let ticks = 0;
    const ticking = setInterval(() => ticks++, 20);
    const started = Date.now();
    await runtime.stop();
    clearInterval(ticking);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(ticks).toBeGreaterThan(3);
    const unpublished = await store.pendingOutbox(100);
    expect(unpublished.map((e) => e.subject)).toContain('warden.evt.promotion_rolled_back.m');
    await store.close();

    const bus = new MemoryBus();
    const seen: string[] = [];
    bus.subscribe('warden.evt.>', (m) => void seen.push(m.subject));
    const again = new SqliteStore(join(dir, 'warden.db'));
    const restarted = make(again, bus);
    await restarted.start();
    restarted.startPublishing();
    await restarted.idle();
    expect(seen).toEqual(unpublished.map((e) => e.subject));
    expect(await again.pendingOutbox(100)).toEqual([]);
    await restarted.stop();
    await again.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('a version passing its statistical test is recorded (issue 10)', () => {
  it('an accept_h0 answers with the test passed and leaves a line in the model timeline', async () => {
    const t = await startTestWarden({ detection: { mode: 'statistical' } });
    try {
      for (const version of ['v1', 'v2']) await t.warden.promote({ model_id: 'm', version, elo: 1500 });
      let passed: number | undefined;
      for (let i = 0; i < 200 && passed === undefined; i++) {
        const result = await t.warden.evaluate({
          model_id: 'm',
          games_played: 100,
          wins: 52,
          draws: 0,
          losses: 48,
        });
        const outcome = result.outcome as { kind: string; passedTest?: number };
        passed = outcome.passedTest;
      }
      expect(passed).toBe(1);
      await t.warden.idle();
      const lines = await t.warden.store.timeline!('model', 'm', 50);
      expect(lines.some((l) => l.summary.includes('passed statistical test 1'))).toBe(true);
    } finally {
      await t.close();
    }
  });
});

const withId = (event: ModelEvent, inputId: string): ModelEvent => ({ ...event, inputId }) as ModelEvent;

/**
 * A runtime over an in-memory store whose next commit, once `refuseNext()` is called, loses to another writer
 * (nothing is written), and an observer that throws on the `failAt`-th evaluation applied: a bug after the
 * machine took the event.
 */
function conflictingRuntime(failAt: number) {
  const policy = modelPolicyFrom(parseConfig({ detection: { mode: 'threshold' } }));
  const inner = new SqliteStore(':memory:');
  let refuse = false;
  const store = new Proxy(inner, {
    get(target, property) {
      if (property === 'commit')
        return async (batch: Parameters<SqliteStore['commit']>[0]) => {
          if (refuse) {
            refuse = false;
            throw new ConflictError('model m changed since revision 2');
          }
          return target.commit(batch);
        };
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  let evaluations = 0;
  const runtime = runtimeOf(policy, store, {
    observer: {
      outcome: (_kind, _key, event) => {
        if (event === 'EVALUATED' && ++evaluations === failAt) throw new TypeError('observer bug');
      },
    },
  });
  const committedIds = () =>
    (inner.peekActor('model', 'm')!.snapshot as { snapshot: { context: { recentInputIds: string[] } } })
      .snapshot.context.recentInputIds;
  return { runtime, committedIds, refuseNext: () => (refuse = true) };
}

describe('an input that fails when a batch is applied again after a conflict', () => {
  it('fails as at its first application: the actor goes back to its committed state, and what it took in that turn is refused as retryable', async () => {
    // Two evaluations at first; the second of them fails when the batch is applied again (the fourth).
    const { runtime, committedIds, refuseNext } = conflictingRuntime(4);
    await runtime.start();
    await runtime.dispatchModel(
      'm',
      { type: 'PROMOTED', at: 1, version: 'v1', elo: 1500 },
      { configKey: 'm' },
    );
    refuseNext();
    const first = runtime.dispatchModel('m', withId(evaluated(1490, 2), 'a'));
    const second = runtime.dispatchModel('m', withId(evaluated(1480, 3), 'b'));
    // As when an input fails at its first application: the inputs of its actor taken in the same turn are
    // refused too (retryable: they come again), since the actor is put back to its committed state.
    await expect(first).rejects.toMatchObject({ retryable: true });
    await expect(second).rejects.toMatchObject({ code: 'internal' });
    await runtime.idle();
    expect(committedIds()).toEqual([]);
    // The actor in memory is the committed one: both inputs come again and are taken, once each.
    await runtime.dispatchModel('m', withId(evaluated(1490, 4), 'a'));
    await runtime.dispatchModel('m', withId(evaluated(1480, 5), 'b'));
    await runtime.idle();
    expect(committedIds()).toEqual(['a', 'b']);
    await runtime.stop();
  });

  it('with log positions (NATS), an input after the failed one is not applied ahead of it', async () => {
    // Three evaluations at first; the second of them fails when the batch is applied again (the fifth).
    const { runtime, committedIds, refuseNext } = conflictingRuntime(5);
    await runtime.start();
    await runtime.dispatchModel(
      'm',
      { type: 'PROMOTED', at: 1, version: 'v1', elo: 1500 },
      { configKey: 'm' },
      1,
    );
    refuseNext();
    const results = await Promise.allSettled([
      runtime.dispatchModel('m', withId(evaluated(1490, 2), 'a'), undefined, 2),
      runtime.dispatchModel('m', withId(evaluated(1480, 3), 'b'), undefined, 3),
      runtime.dispatchModel('m', withId(evaluated(1470, 4), 'c'), undefined, 4),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ retryable: true });
    await runtime.idle();
    expect(committedIds()).toEqual([]);
    await runtime.stop();
  });
});

/** SQLite in memory, whose commits `refuse` may fail (an Error) or let through (null). */
function refusingStore(refuse: () => Error | null): StateStore {
  const sqlite = new SqliteStore(':memory:');
  return Object.assign(Object.create(sqlite) as SqliteStore, {
    commit: (batch: CommitBatch) => {
      const refusal = refuse();
      return refusal ? Promise.reject(refusal) : sqlite.commit(batch);
    },
  });
}

describe('a model whose first input fails exists nowhere', () => {
  /** A runtime over SQLite whose next commit can be refused, and whose promotion step can throw once. */
  function fragileRuntime() {
    const policy = modelPolicyFrom(parseConfig({ detection: { mode: 'threshold' } }));
    const faults = { refuseNextCommit: false, throwOnNextPromotion: false };
    const store = refusingStore(() => {
      if (!faults.refuseNextCommit) return null;
      faults.refuseNextCommit = false;
      return new Error('disk I/O error');
    });
    const runtime = runtimeOf(policy, store, {
      observer: {
        outcome: (_kind, _key, _event, outcome) => {
          if (outcome.kind !== 'promoted' || !faults.throwOnNextPromotion) return;
          faults.throwOnNextPromotion = false;
          throw new Error('a bug in the step');
        },
      },
    });
    return { runtime, store, faults };
  }
  const promoted = (at: number): ModelEvent => ({ type: 'PROMOTED', at, version: 'v1', elo: 1500 });

  it('is not shown when the write that would make it fails, and the promotion that comes again makes it', async () => {
    const { runtime, store, faults } = fragileRuntime();
    await runtime.start();
    faults.refuseNextCommit = true;
    await expect(runtime.dispatchModel('n', promoted(1), { configKey: 'n' })).rejects.toThrow('disk I/O');
    // Nothing is stored: no view shows a model with no version.
    expect(runtime.model('n')).toBeNull();
    expect(runtime.hasModel('n')).toBe(false);
    expect(runtime.models()).toEqual([]);
    expect(runtime.hasModelWithConfigKey('n')).toBe(false);
    await expect(runtime.dispatchModel('n', evaluated(1490, 2))).rejects.toMatchObject({
      code: 'unknown_model',
    });
    await runtime.dispatchModel('n', promoted(3), { configKey: 'n' });
    expect(runtime.model('n')!.context.productionVersion).toBe('v1');
    await runtime.stop();
    await store.close();
  });

  it('with log positions (NATS), an input of the same turn after it is refused as retryable, not as unknown', async () => {
    const { runtime, store, faults } = fragileRuntime();
    await runtime.start();
    faults.throwOnNextPromotion = true;
    const [promotion, evaluation] = await Promise.allSettled([
      runtime.dispatchModel('n', promoted(1), { configKey: 'n' }, 1),
      runtime.dispatchModel('n', withId(evaluated(1490, 2), 'a'), undefined, 2),
    ]);
    expect(promotion).toMatchObject({ status: 'rejected', reason: { code: 'internal' } });
    // It must come again after the promotion: a refusal as an unknown model would drop it for good.
    expect(evaluation).toMatchObject({
      status: 'rejected',
      reason: { code: 'unavailable', retryable: true },
    });
    expect(runtime.model('n')).toBeNull();
    // Both come again, in order, in a later turn, and are taken.
    await new Promise((next) => setImmediate(next));
    await runtime.dispatchModel('n', promoted(3), { configKey: 'n' }, 1);
    expect(await runtime.dispatchModel('n', withId(evaluated(1490, 4), 'a'), undefined, 2)).toMatchObject({
      kind: 'healthy',
    });
    await runtime.stop();
    await store.close();
  });
});

describe('a timer whose commit fails', () => {
  /** A model awaiting approval (its deadline armed) over a store whose next commit fails with `refusal`. */
  async function expiringApproval(refusal: Error) {
    const policy = modelPolicyFrom(
      parseConfig({
        detection: { mode: 'threshold' },
        approval: { requireForSevere: true, timeoutSeconds: 60, onTimeout: 'reject' },
      }),
    );
    const logged: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => logged.push(JSON.parse(line)) });
    let refuse = false;
    const store = refusingStore(() => {
      if (!refuse) return null;
      refuse = false;
      return refusal;
    });
    const clock = new ManualClock();
    const runtime = runtimeOf(policy, store, {
      registry: new FakeRegistry(true),
      clock,
      logger,
    });
    await runtime.start();
    await runtime.dispatchModel(
      'm',
      { type: 'PROMOTED', at: clock.now(), version: 'v1', elo: 1500 },
      { configKey: 'm' },
    );
    await runtime.dispatchModel('m', { type: 'PROMOTED', at: clock.now(), version: 'v2', elo: 1500 });
    await runtime.dispatchModel('m', evaluated(1440, clock.now()));
    expect(runtime.model('m')!.state).toBe('awaitingApproval');
    refuse = true;
    clock.advance(61_000);
    await runtime.idle();
    const timerLines = logged.filter((l) => l.msg.startsWith('timer '));
    await runtime.stop();
    await store.close();
    return timerLines;
  }

  it('logs a warning when NATS refuses it for now (retryable), an error for any other failure', async () => {
    const away = new WardenError('unavailable', 'NATS is away', { retryable: true });
    expect(await expiringApproval(away)).toEqual([
      expect.objectContaining({ level: 40, msg: expect.stringContaining('failed; trying again') }),
    ]);
    expect(await expiringApproval(new Error('disk I/O error'))).toEqual([
      expect.objectContaining({ level: 50, msg: expect.stringContaining('failed; trying again') }),
    ]);
  });
});
