/**
 * The production pointer follows a model's committed state in commit order, whatever happens to the writes:
 * a promotion's write still out when the rollback starts, promotion writes lost in a crash between the
 * commit and the write, a rollback that could not be tried here. Runs over the real embedded registry.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ModelRegistry, ProductionPointer, RollbackRequest } from '../../src/actors/ports.ts';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import { WardenError } from '../../src/domain/errors.ts';
import { SqliteStore } from '../../src/embedded/sqlite-store.ts';
import { createWarden, type Warden } from '../../src/warden.ts';
import { eventually } from '../harness/eventually.ts';
import { HoldingBus } from '../support/holding-bus.ts';
import { makeDataDir } from '../support/test-warden.ts';
import { registryWith } from '../support/registry-with.ts';

/** The store's own registry, except for the writes a test holds (released later, or never: a crash). */
class HeldRegistry implements ModelRegistry {
  readonly held: Array<() => Promise<void>> = [];
  holdPromotions = new Set<string>();
  unavailableRollbacks = 0;

  constructor(private readonly inner: SqliteStore) {}

  recordPromotion(modelId: string, version: string, at: number, reason: string): Promise<void> {
    if (!this.holdPromotions.has(version)) return this.inner.recordPromotion(modelId, version, at, reason);
    return new Promise((resolve) =>
      this.held.push(() => this.inner.recordPromotion(modelId, version, at, reason).then(resolve)),
    );
  }

  async rollback(request: RollbackRequest): Promise<void> {
    if (this.unavailableRollbacks-- > 0)
      throw new WardenError('unavailable', `registry: this instance no longer takes ${request.modelId}`, {
        retryable: true,
      });
    return this.inner.rollback(request);
  }

  production(modelId: string): Promise<ProductionPointer | null> {
    return this.inner.production(modelId);
  }

  async releaseAll(): Promise<void> {
    for (const write of this.held.splice(0)) await write();
  }
}

const dirs: string[] = [];
const open: Array<{ warden: Warden; store: SqliteStore }> = [];
afterEach(async () => {
  for (const { warden, store } of open.splice(0)) {
    await store.close();
    void warden;
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function start(dir: string, clock: ManualClock, registry?: (store: SqliteStore) => ModelRegistry) {
  const store = new SqliteStore(join(dir, 'warden.db'));
  const bus = new HoldingBus();
  const config = parseConfig({ dataDir: dir, detection: { mode: 'threshold' } });
  const warden = await createWarden(config, { clock, registry: registry?.(store) ?? store, bus, store });
  open.push({ warden, store });
  const events = (kind: string) =>
    bus.log.filter((m) => m.subject.includes(`.evt.${kind}.`)).map((m) => m.data);
  return { store, warden, bus, events };
}

async function newDir(): Promise<string> {
  const dir = await makeDataDir();
  dirs.push(dir);
  return dir;
}

/**
 * The store refuses the commits of a rollback's result while `refusing()` says so, at once (as one that
 * refuses every write while its disk or bucket is full), and takes everything else. Counts the refusals.
 */
function refuseRollbackResults(store: SqliteStore, refusing: () => boolean): { refused: number } {
  const counted = { refused: 0 };
  const commit = store.commit.bind(store);
  store.commit = (batch) => {
    if (refusing() && batch.outbox.some((e) => e.subject.includes('.promotion_rolled_back.'))) {
      counted.refused++;
      return Promise.reject(new Error('the store refuses writes for now'));
    }
    return commit(batch);
  };
  return counted;
}

describe('the production pointer under lost and late registry writes', () => {
  it('a rollback waits for the promotion writes before it, then moves the pointer once', async () => {
    const clock = new ManualClock(1_000_000);
    let held!: HeldRegistry;
    const w = await start(await newDir(), clock, (store) => (held = new HeldRegistry(store)));
    await w.warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
    held.holdPromotions.add('v2');
    clock.advance(1_000);
    await w.warden.promote({ model_id: 'm', version: 'v2', elo: 1520 });
    clock.advance(1_000);
    expect((await w.warden.evaluate({ model_id: 'm', current_elo: 1400, games_played: 200 })).state).toBe(
      'rollingBack',
    );
    // v2's write is still out: the rollback has not touched the pointer.
    expect((await w.store.production('m'))!.version).toBe('v1');
    await held.releaseAll();
    await w.warden.idle();
    expect((await w.store.production('m'))!.version).toBe('v1');
    expect(w.warden.status('m').models[0]!.production_version).toBe('v1');
    expect(w.events('promotion_rolled_back')).toHaveLength(1);
    expect(w.events('rollback_failed')).toEqual([]);
  });

  it('after a crash that lost promotion writes, the restarted rollback applies over the lagging pointer', async () => {
    const dir = await newDir();
    const clock = new ManualClock(1_000_000);
    let held!: HeldRegistry;
    const first = await start(dir, clock, (store) => (held = new HeldRegistry(store)));
    await first.warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
    held.holdPromotions = new Set(['v2', 'v3']);
    for (const [version, elo] of [
      ['v2', 1520],
      ['v3', 1530],
    ] as const) {
      clock.advance(1_000);
      await first.warden.promote({ model_id: 'm', version, elo });
    }
    clock.advance(1_000);
    await first.warden.evaluate({ model_id: 'm', current_elo: 1400, games_played: 200 });
    // SIGKILL: the store closes under the process; the held writes never land.
    await first.store.close();
    open.splice(0);

    const second = await start(dir, new ManualClock(clock.now()));
    await second.warden.idle();
    expect(second.warden.status('m').models[0]).toMatchObject({
      state: 'cooldown',
      production_version: 'v2',
    });
    expect((await second.store.production('m'))!.version).toBe('v2');
    expect(second.events('promotion_rolled_back')).toHaveLength(1);
    expect(second.events('rollback_failed')).toEqual([]);
  });

  it('a pointer someone else moved after the promotion still refuses the rollback, loudly', async () => {
    const clock = new ManualClock(1_000_000);
    const w = await start(await newDir(), clock);
    await w.warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
    clock.advance(1_000);
    await w.warden.promote({ model_id: 'm', version: 'v2', elo: 1520 });
    clock.advance(1_000);
    await w.store.recordPromotion('m', 'v9', clock.now(), 'moved by the serving system');
    await w.warden.evaluate({ model_id: 'm', current_elo: 1400, games_played: 200 });
    await w.warden.idle();
    expect(w.events('rollback_failed')).toMatchObject([
      { error: 'registry: expected m to be at v2 in production, found v9' },
    ]);
    expect((await w.store.production('m'))!.version).toBe('v9');
  });

  it('a rollback the registry could not try here is not a failed rollback: it runs again', async () => {
    const clock = new ManualClock(1_000_000);
    let held!: HeldRegistry;
    const w = await start(await newDir(), clock, (store) => (held = new HeldRegistry(store)));
    held.unavailableRollbacks = 1;
    await w.warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
    clock.advance(1_000);
    await w.warden.promote({ model_id: 'm', version: 'v2', elo: 1520 });
    await w.warden.evaluate({ model_id: 'm', current_elo: 1400, games_played: 200 });
    await w.warden.idle();
    expect(w.warden.status('m').models[0]!.state).toBe('rollingBack');
    expect(w.events('rollback_failed')).toEqual([]);
    clock.advance(999);
    await w.warden.idle();
    expect(w.warden.status('m').models[0]!.state).toBe('rollingBack');
    clock.advance(1);
    // The registry call is not awaited by idle() (a registry may hang): wait for its result, bounded.
    await eventually(() => expect(w.events('promotion_rolled_back')).toHaveLength(1));
    expect((await w.store.production('m'))!.version).toBe('v1');
    expect(w.events('rollback_failed')).toEqual([]);
  });

  it('a rollback result that cannot be stored is tried again a second later, not at once in a loop', async () => {
    const clock = new ManualClock(1_000_000);
    let rollbackCalls = 0;
    let refusing = true;
    const w = await start(await newDir(), clock, (store) =>
      registryWith(store, {
        rollback: (request) => {
          rollbackCalls++;
          return store.rollback(request);
        },
      }),
    );
    const results = refuseRollbackResults(w.store, () => refusing);
    await w.warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
    clock.advance(1_000);
    await w.warden.promote({ model_id: 'm', version: 'v2', elo: 1520 });
    await w.warden.evaluate({ model_id: 'm', current_elo: 1400, games_played: 200 });
    await eventually(() => expect(results.refused).toBe(1));
    // Many turns of the event loop, and no time on the service clock: nothing is tried again yet.
    for (let turn = 0; turn < 100; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect({ rollbackCalls, refused: results.refused }).toEqual({ rollbackCalls: 1, refused: 1 });
    expect(w.warden.status('m').models[0]!.state).toBe('rollingBack');
    clock.advance(1_000);
    await eventually(() => expect(results.refused).toBe(2));
    refusing = false;
    clock.advance(1_000);
    await eventually(() => expect(w.events('promotion_rolled_back')).toHaveLength(1));
    await w.warden.idle();
    expect(w.warden.status('m').models[0]!.production_version).toBe('v1');
    expect(rollbackCalls).toBe(3);
    expect(w.events('rollback_failed')).toEqual([]);
  });

  it('after a crash that lost promotion writes, each model is brought in line on its own: one the registry cannot read holds back no other, and is tried again later', async () => {
    const dir = await newDir();
    const clock = new ManualClock(1_000_000);
    let held!: HeldRegistry;
    const first = await start(dir, clock, (store) => (held = new HeldRegistry(store)));
    const models = ['a', 'b', 'c'];
    for (const model of models) await first.warden.promote({ model_id: model, version: 'v1', elo: 1500 });
    held.holdPromotions.add('v2');
    clock.advance(1_000);
    for (const model of models) await first.warden.promote({ model_id: model, version: 'v2', elo: 1520 });
    await first.store.close(); // SIGKILL: the v2 writes never land
    open.splice(0);

    let unreadable = true;
    let readsOfB = 0;
    const later = new ManualClock(clock.now());
    const second = await start(dir, later, (store) =>
      registryWith(store, {
        production: async (modelId) => {
          if (modelId === 'b' && (readsOfB++, unreadable)) throw new Error('registry: b cannot be read');
          return store.production(modelId);
        },
      }),
    );
    await second.warden.idle();
    const pointers = async () =>
      Promise.all(models.map(async (m) => (await second.store.production(m))!.version));
    expect(await pointers()).toEqual(['v2', 'v1', 'v2']);
    expect((await second.store.production('a'))!.reason).toBe('reconciled');
    // b is tried again after 2 s, then 4 s...: a registry that keeps refusing is not asked in a loop.
    expect(readsOfB).toBe(1);
    for (const [ms, reads] of [
      [1_999, 1],
      [1, 2],
      [3_999, 2],
      [1, 3],
    ] as const) {
      later.advance(ms);
      await second.warden.idle();
      expect(readsOfB).toBe(reads);
    }
    unreadable = false;
    later.advance(8_000);
    await second.warden.idle();
    expect(await pointers()).toEqual(['v2', 'v2', 'v2']);
    expect(second.events('rollback_failed')).toEqual([]);
  });

  it('a promotion write that failed is brought in line a second later, without waiting for an input or a restart', async () => {
    const clock = new ManualClock(1_000_000);
    let refusing = 1;
    const w = await start(await newDir(), clock, (store) =>
      registryWith(store, {
        recordPromotion: async (...args) => {
          if (refusing-- > 0) throw new Error('the registry refuses writes for now');
          return store.recordPromotion(...args);
        },
      }),
    );
    await w.warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
    await w.warden.idle();
    expect(await w.store.production('m')).toBeNull();
    clock.advance(999);
    await w.warden.idle();
    expect(await w.store.production('m')).toBeNull();
    clock.advance(1);
    await w.warden.idle();
    expect(await w.store.production('m')).toMatchObject({ version: 'v1', reason: 'reconciled' });
  });
});

describe('what committed state calls for is looked at again at the soonest time asked', () => {
  it('a rollback result that could not be stored runs again a second later, while the pointer waits 8 s for its next try', async () => {
    const clock = new ManualClock(1_000_000);
    let rollbackCalls = 0;
    const w = await start(await newDir(), clock, (store) =>
      registryWith(store, {
        recordPromotion: async (modelId, version, ...rest) => {
          if (version === 'v2') throw new Error('the registry refuses this write');
          return store.recordPromotion(modelId, version, ...rest);
        },
        production: async () => {
          throw new Error('the registry cannot be read for now');
        },
        rollback: (request) => {
          rollbackCalls++;
          return store.rollback(request);
        },
      }),
    );
    const results = refuseRollbackResults(w.store, () => results.refused === 0);
    await w.warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
    clock.advance(1_000);
    await w.warden.promote({ model_id: 'm', version: 'v2', elo: 1520 });
    await w.warden.idle();
    // The pointer cannot be brought in line: tried after 1 s, 2 s and 4 s, next after 8 s.
    for (const ms of [1_000, 2_000, 4_000]) {
      clock.advance(ms);
      await w.warden.idle();
    }
    await w.warden.evaluate({ model_id: 'm', current_elo: 1400, games_played: 200 });
    await eventually(() => expect(results.refused).toBe(1));
    await w.warden.idle();
    expect({ rollbackCalls, state: w.warden.status('m').models[0]!.state }).toEqual({
      rollbackCalls: 1,
      state: 'rollingBack',
    });
    clock.advance(1_000);
    await eventually(() => expect(w.events('promotion_rolled_back')).toHaveLength(1));
    await w.warden.idle();
    expect(rollbackCalls).toBe(2);
    expect(w.warden.status('m').models[0]!.production_version).toBe('v1');
    expect((await w.store.production('m'))!.version).toBe('v1');
  });

  it('once the pointer is in line, the next failed write is tried again a second later, not after the last wait', async () => {
    const clock = new ManualClock(1_000_000);
    let unreadable = true;
    const refusedVersions = new Set(['v2', 'v4']);
    const w = await start(await newDir(), clock, (store) =>
      registryWith(store, {
        recordPromotion: async (modelId, version, ...rest) => {
          if (refusedVersions.delete(version)) throw new Error('the registry refuses this write');
          return store.recordPromotion(modelId, version, ...rest);
        },
        production: async (modelId) => {
          if (unreadable) throw new Error('the registry cannot be read for now');
          return store.production(modelId);
        },
      }),
    );
    const pointer = async () => (await w.store.production('m'))?.version;
    await w.warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
    clock.advance(1_000);
    await w.warden.promote({ model_id: 'm', version: 'v2', elo: 1520 });
    await w.warden.idle();
    // v2 is tried again after 1 s and 2 s, in vain (the next try would wait 4 s)...
    for (const ms of [1_000, 2_000]) {
      clock.advance(ms);
      await w.warden.idle();
    }
    expect(await pointer()).toBe('v1');
    // ...until v3's own write puts the pointer in line.
    unreadable = false;
    await w.warden.promote({ model_id: 'm', version: 'v3', elo: 1530 });
    await w.warden.idle();
    expect(await pointer()).toBe('v3');
    await w.warden.promote({ model_id: 'm', version: 'v4', elo: 1540 });
    await w.warden.idle();
    expect(await pointer()).toBe('v3');
    clock.advance(1_000);
    await w.warden.idle();
    expect(await w.store.production('m')).toMatchObject({ version: 'v4', reason: 'reconciled' });
  });
});
