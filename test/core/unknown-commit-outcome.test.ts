/**
 * A commit that got no answer (NATS went away with the reply) may have landed: the copy goes back to its
 * last known commit, behind what is stored, until the store brings it in line. An event it refuses as stale
 * meanwhile must come again, not be answered as stale: its sender (a durable consumer) would drop it for
 * good. Seen in the chaos tests: with nats-server SIGKILLed, a model's rollback result was stored but its
 * reply lost; the training config's pause acknowledgement reached the copy still rolling back, was refused as
 * stale and acknowledged, and the model stayed rolled back, never in cooldown.
 */
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import { MemoryBus } from '../../src/embedded/memory-bus.ts';
import { createWarden } from '../../src/warden.ts';
import { FakeRegistry } from '../support/fake-registry.ts';
import { makeDataDir } from '../support/test-warden.ts';
import { SharedRecords, SharedStore } from '../support/shared-store.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('a commit whose outcome is unknown', () => {
  it('has the events its copy refuses meanwhile come again, and they apply once the copy is in line', async () => {
    const dir = await makeDataDir();
    dirs.push(dir);
    const store = new SharedStore(new SharedRecords());
    const registry = new FakeRegistry();
    const bus = new MemoryBus();
    const warden = await createWarden(parseConfig({ dataDir: dir }), {
      clock: new ManualClock(),
      registry,
      store,
      bus,
    });
    const state = () => warden.status('m').models[0]!.state;
    try {
      await warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
      await warden.promote({ model_id: 'm', version: 'v2', elo: 1500 });
      await warden.evaluate({ model_id: 'm', current_elo: 1200, games_played: 200 });
      expect(state()).toBe('rollingBack');

      // The rollback's result is stored, but its commit is answered as one that got no answer.
      store.landNext = 'model';
      const request = registry.settle('succeed');
      await warden.idle();
      expect(state()).toBe('rollingBack');

      // The pause acknowledgement, as the training config would publish it once the rollback event is out
      // (another instance's sweeper publishes the stored event). A durable delivery: a failure comes again.
      const acknowledge = () =>
        bus.publish(`warden.int.pause_acknowledged.m`, {
          event_id: `ack-${request.rollbackId}`,
          timestamp: 1,
          rollback_id: request.rollbackId,
          model_id: 'm',
          config_key: 'm',
        });
      const first = await acknowledge().then(
        () => 'taken',
        () => 'comes again',
      );

      // The copy is in line: the refusal made it read the store, and its watch brings the record too.
      store.deliverLanded();
      expect(state()).toBe('rolledBack');
      if (first === 'comes again') await acknowledge();
      expect(first).toBe('comes again');
      expect(state()).toBe('cooldown');
    } finally {
      await warden.stop();
    }
  });

  it("of a model's first write that did not land: the model is forgotten once the store is read", async () => {
    const dir = await makeDataDir();
    dirs.push(dir);
    const store = new SharedStore(new SharedRecords());
    const bus = new MemoryBus();
    const warden = await createWarden(parseConfig({ dataDir: dir }), {
      clock: new ManualClock(),
      registry: new FakeRegistry(),
      store,
      bus,
    });
    try {
      store.dropNext = true;
      await expect(warden.promote({ model_id: 'm', version: 'v1', elo: 1500 })).rejects.toMatchObject({
        retryable: true,
      });
      // In doubt, the copy stays: its write may have landed (its input comes again meanwhile).
      expect(warden.status('m').models[0]!.versions).toEqual([]);
      // An event it refuses makes it read the store, which holds nothing of it: it goes.
      await expect(
        bus.publish('warden.int.pause_acknowledged.m', {
          event_id: 'ack-1',
          timestamp: 1,
          rollback_id: 'r1',
          model_id: 'm',
          config_key: 'm',
        }),
      ).rejects.toMatchObject({ retryable: true });
      await warden.idle();
      expect(() => warden.status('m')).toThrow(/unknown model/);
      await warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
      expect(warden.status('m').models[0]!.production_version).toBe('v1');
    } finally {
      await warden.stop();
    }
  });

  it('whose input comes again and is found applied: the stored state runs what it calls for (its rollback)', async () => {
    const dir = await makeDataDir();
    dirs.push(dir);
    const store = new SharedStore(new SharedRecords());
    const registry = new FakeRegistry(true);
    const warden = await createWarden(parseConfig({ dataDir: dir }), {
      clock: new ManualClock(),
      registry,
      store,
      bus: new MemoryBus(),
    });
    const regression = { event_id: 'e1', model_id: 'm', current_elo: 1200, games_played: 200 };
    try {
      await warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
      await warden.promote({ model_id: 'm', version: 'v2', elo: 1500 });
      // The detection's write lands, but is answered as lost: the copy is back on v2, healthy, in doubt.
      store.landNext = 'model';
      await expect(warden.evaluate(regression)).rejects.toMatchObject({ retryable: true });
      expect(warden.status('m').models[0]!.state).toBe('healthy');
      // The input comes again: the copy's write conflicts with the landed one, the copy takes the stored
      // state, and the input is found applied there. Nothing more is written, but the stored state calls
      // for a rollback, and it must run.
      await warden.evaluate(regression);
      await warden.idle();
      expect(registry.calls.map((r) => r.toVersion)).toEqual(['v1']);
      // Then the chain goes on as ever: the training config pauses, acknowledges, and the model cools down.
      expect(warden.status('m').models[0]).toMatchObject({ state: 'cooldown', production_version: 'v1' });
      expect(warden.status('m').training[0]).toMatchObject({ status: 'paused' });
    } finally {
      await warden.stop();
    }
  });
});
