import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { SqliteStore } from '../../src/embedded/sqlite-store.ts';
import { createWarden, type Warden } from '../../src/warden.ts';
import { FakeRegistry } from './fake-registry.ts';
import { HoldingBus } from './holding-bus.ts';

export interface TestWarden {
  readonly warden: Warden;
  readonly clock: ManualClock;
  readonly registry: FakeRegistry;
  readonly bus: HoldingBus;
  readonly dir: string;
  readonly config: ConfigInput;
  /** Stops this instance in order and starts a new one on the same data directory and clock. */
  restart(): Promise<TestWarden>;
  /**
   * Kills this instance without shutdown (as SIGKILL would: its store is closed under it, its pending
   * registry calls never answer) and starts a new one on the same data directory, at the same time.
   */
  crash(): Promise<TestWarden>;
  close(): Promise<void>;
}

export async function makeDataDir(): Promise<string> {
  return mkdtempSync(join(tmpdir(), 'warden-test-'));
}

/**
 * An embedded Warden on a temp SQLite file, a manual clock, a registry the test settles, and a bus that
 * logs everything and can hold messages.
 */
export async function startTestWarden(
  config: ConfigInput = {},
  shared: { dir?: string; clock?: ManualClock; registry?: FakeRegistry; bus?: HoldingBus } = {},
): Promise<TestWarden> {
  const dir = shared.dir ?? (await makeDataDir());
  const clock = shared.clock ?? new ManualClock();
  const registry = shared.registry ?? new FakeRegistry();
  const bus = shared.bus ?? new HoldingBus();
  const full = { ...config, dataDir: dir };
  const store = new SqliteStore(join(dir, 'warden.db'));
  const warden = await createWarden(parseConfig(full), { clock, registry, bus, store });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await warden.stop();
  };
  return {
    warden,
    clock,
    registry,
    bus,
    dir,
    config,
    async restart() {
      await stop();
      return startTestWarden(config, { dir, clock, registry, bus: new HoldingBus() });
    },
    async crash() {
      stopped = true;
      registry.abandonPending();
      await store.close();
      const clockAfter = new ManualClock(clock.now());
      return startTestWarden(config, { dir, clock: clockAfter, registry, bus: new HoldingBus() });
    },
    async close() {
      // A rollback the test left pending would hold an orderly stop forever: abandon it instead.
      if (registry.pendingCount() > 0 && !stopped) {
        stopped = true;
        registry.abandonPending();
        await store.close();
      }
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
