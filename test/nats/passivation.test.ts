/**
 * Issue 14 in NATS mode: the KV store keeps every committed value within reach (its watch), so the runtime
 * starts lazily and passivates idle actors there too. A passivated actor's timers fire on time, a restart
 * loads only the actors whose state needs the runtime, and every other actor comes back on its next input.
 */
import { Kvm } from '@nats-io/kv';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { WardenError } from '../../src/domain/errors.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import type { KvStore } from '../../src/nats/kv-store.ts';
import { Lease } from '../../src/nats/lease.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden, type NatsWarden } from '../harness/nats-warden.ts';
import { partitionOf } from '../../src/nats/partitions-map.ts';
import { publishRegression } from '../harness/regression.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { registryWith } from '../support/registry-with.ts';

const nats = useSharedNats({ partitions: { passpart: 2 } });
afterEach(() => vi.restoreAllMocks());

const IDLE_S = 10;
const config = (prefix: string): ConfigInput => ({
  detection: { mode: 'threshold' },
  approval: { requireForSevere: true, timeoutSeconds: 60, onTimeout: 'rollback' },
  cooldownSeconds: 120,
  training: { autoResumeSeconds: 300 },
  passivateAfterSeconds: IDLE_S,
  nats: { prefix },
});

/** Lets the work in flight end (a promotion's registry write keeps its actor resident), then moves time. */
async function advance(w: NatsWarden, clock: ManualClock, ms: number): Promise<void> {
  await w.settled();
  clock.advance(ms);
  await w.settled();
}

const listed = (w: NatsWarden, model: string) => w.warden.status().models.find((m) => m.model_id === model)!;
const listedTraining = (w: NatsWarden, key: string) =>
  w.warden.status().training.find((c) => c.config_key === key)!;
/** A healthy evaluation of `model`, published as a pipeline would. */
const healthyEvaluation = (prefix: string, model: string) =>
  nats.client.publish(`${prefix}.in.evaluation.${model}`, {
    event_id: `${model}-e1`,
    model_id: model,
    current_elo: 1499,
    games_played: 200,
  });
const stored = async (prefix: string, kind: string) =>
  nats.client.stored(`${prefix}.evt.${kind}.>`, `${prefix.toUpperCase()}_EVENTS`);

describe('passivation in NATS mode', () => {
  it('a passivated actor’s approval expires on time, its cooldown ends on time, and its training config auto-resumes on time', async () => {
    const prefix = 'passive';
    const clock = new ManualClock();
    await using w = await startNatsWarden(nats.server.url, { config: config(prefix), clock });
    const t0 = clock.now();
    for (const version of ['v1', 'v2']) await w.warden.promote({ model_id: 'm1', version, elo: 1500 });
    const held = await w.warden.evaluate({ model_id: 'm1', current_elo: 1440, games_played: 100 });
    expect(held.state).toBe('awaitingApproval');
    const deadline = t0 + 60_000;

    // Idle long enough: passivated, its deadline in the index.
    await advance(w, clock, 30_000);
    expect(w.warden.residency()).toMatchObject({ models: 0, trainings: 0, timersIndexed: 1 });
    expect(listed(w, 'm1').state).toBe('awaitingApproval');

    // One millisecond before the deadline nothing has happened; at the deadline the approval expires.
    await advance(w, clock, deadline - 1 - clock.now());
    expect(await stored(prefix, 'promotion_rolled_back')).toHaveLength(0);
    expect(w.warden.residency().models).toBe(0);
    await advance(w, clock, 1);
    const rolledBack = await stored(prefix, 'promotion_rolled_back');
    expect(rolledBack).toHaveLength(1);
    expect((rolledBack[0]!.data as { timestamp: number }).timestamp).toBe(deadline / 1000);
    expect(listedTraining(w, 'm1').status).toBe('paused');

    // The cooldown runs from the rollback; the model and its config are passivated again meanwhile.
    const cooldownUntil = Date.parse(listed(w, 'm1').cooldown_until!);
    expect(cooldownUntil).toBe(deadline + 120_000);
    await advance(w, clock, 60_000);
    expect(w.warden.residency()).toMatchObject({ models: 0, trainings: 0 });
    await advance(w, clock, cooldownUntil - 1 - clock.now());
    expect(listed(w, 'm1').state).not.toBe('healthy');
    await advance(w, clock, 1);
    expect(listed(w, 'm1').state).toBe('healthy');

    // The training config resumes by itself 300 s after its pause, passivated or not.
    const resumeAt = Date.parse(listedTraining(w, 'm1').auto_resume_at!);
    await advance(w, clock, resumeAt - 1 - clock.now());
    expect(w.warden.residency().trainings).toBe(0);
    expect(await stored(prefix, 'training_resumed')).toHaveLength(0);
    await advance(w, clock, 1);
    expect(await stored(prefix, 'training_resumed')).toHaveLength(1);
    expect(listedTraining(w, 'm1').status).toBe('running');
    expect(await stored(prefix, 'promotion_rolled_back')).toHaveLength(1);
  });

  it('a restart loads only what needs it: promoted models whose registry write is done come back on their next input', async () => {
    const prefix = 'lazystart';
    const models = Array.from({ length: 40 }, (_, i) => `m${i}`);
    {
      await using first = await startNatsWarden(nats.server.url, { config: config(prefix) });
      for (const model of models) {
        await nats.client.publish(`${prefix}.in.promotion.${model}`, {
          event_id: `${model}-p1`,
          model_id: `${model}_v1`,
          elo: 1500,
        });
      }
      await healthyEvaluation(prefix, 'm0');
      await first.settled();
      expect(first.warden.status().models).toHaveLength(models.length);
    }

    await using second = await startNatsWarden(nats.server.url, { config: config(prefix) });
    // Each promotion's registry write was done: the index in its value says so, and nothing is loaded.
    expect(second.warden.residency()).toMatchObject({ models: 0, trainings: 0 });
    // The list view reads them without loading them.
    expect(second.warden.status().models.map((m) => m.production_version)).toEqual(models.map(() => 'v1'));
    expect(second.warden.residency().models).toBe(0);

    await healthyEvaluation(prefix, 'm7');
    await second.settled();
    expect(second.warden.residency().models).toBe(1);
    expect(listed(second, 'm7')).toMatchObject({ state: 'healthy', production_version: 'v1' });
  });

  for (const instances of [1, 2] as const) {
    it(`values written before the start-up index are loaded at one start, indexed there, and not loaded at the next (${instances} instance${instances > 1 ? 's' : ''})`, async () => {
      const prefix = `oldvalues${instances}`;
      const models = Array.from({ length: 20 }, (_, i) => `m${i}`);
      {
        await using first = await startNatsWarden(nats.server.url, { config: config(prefix) });
        for (const model of models) await first.warden.promote({ model_id: model, version: 'v1', elo: 1500 });
        await first.settled();
      }
      // As an older build wrote them: no deadline, no attention flag.
      const kv = await new Kvm(nats.client.js).open(`${prefix}_actors`);
      for await (const key of await kv.keys('model.>')) {
        const entry = await kv.get(key);
        const { deadline: _deadline, attention: _attention, ...old } = entry!.json<Record<string, unknown>>();
        await kv.put(key, JSON.stringify(old));
      }

      {
        // With two, the one that starts second stands by while the first writes the index: it loads what is
        // not indexed yet when it starts, and writes none of it.
        const running: NatsWarden[] = [];
        try {
          for (let i = 0; i < instances; i++)
            running.push(await startNatsWarden(nats.server.url, { config: config(prefix) }));
          // Nothing says they may wait: every one is loaded, as before the index.
          expect(running[0]!.warden.residency().models).toBe(models.length);
          expect(running.map((w) => w.adapters.role())).toEqual(
            instances === 1 ? ['active'] : ['active', 'standby'],
          );
          // Once the writer writes them, their index is written.
          await eventually(async () => {
            for (const model of models) {
              const value = await nats.client.kv<{ attention?: boolean }>(
                `${prefix}_actors`,
                `model.${model}`,
              );
              expect(value?.attention, model).toBe(false);
            }
          });
          for (const w of running) {
            await w.settled();
            expect(w.warden.status().models.map((m) => m.production_version)).toEqual(models.map(() => 'v1'));
          }
        } finally {
          for (const w of running) await w.stop();
        }
      }
      await using third = await startNatsWarden(nats.server.url, { config: config(prefix) });
      expect(third.warden.residency().models).toBe(0);
      expect(third.warden.status().models.map((m) => m.production_version)).toEqual(models.map(() => 'v1'));
      // Nothing was written but the index: the registry still holds the promotions as they were.
      for (const model of models)
        expect(await nats.client.kv(`${prefix}_registry`, model)).toMatchObject({
          version: 'v1',
          reason: 'promoted',
        });
    });
  }
});

describe('passivation with input partitions', () => {
  it('each instance runs the timers of the models it writes, and does not load the others for theirs', async () => {
    const prefix = 'passpart';
    const cfg = { ...config(prefix), nats: { prefix, partitions: 2 } };
    // One model in each partition.
    const names = Array.from({ length: 20 }, (_, i) => `pm${i}`);
    const models = [0, 1].map((k) => names.find((n) => partitionOf(n, 2) === k)!);
    const clocks = [new ManualClock(), new ManualClock()];
    await using a = await startNatsWarden(nats.server.url, { config: cfg, clock: clocks[0]! });
    await using b = await startNatsWarden(nats.server.url, { config: cfg, clock: clocks[1]! });
    const both = [a, b];
    await eventually(() => {
      for (const w of both) expect(w.adapters.partitions()).toHaveLength(1);
    });
    for (const model of models) await publishRegression(nats.client, prefix, model);
    const settle = async () => {
      for (const w of both) await w.settled();
    };
    await eventually(async () => {
      await settle();
      for (const w of both) for (const model of models) expect(listed(w, model).state).toBe('cooldown');
    });
    const cooldownUntil = Date.parse(listed(a, models[0]!).cooldown_until!);

    // Idle: every actor passivated on both instances.
    for (const clock of clocks) clock.advance(30_000);
    await settle();
    for (const w of both) expect(w.warden.residency()).toMatchObject({ models: 0, trainings: 0 });

    // Past the cooldowns: each model comes back to healthy once, on the instance that writes it.
    for (const clock of clocks) clock.advance(cooldownUntil - clock.now());
    await eventually(async () => {
      await settle();
      for (const w of both) for (const model of models) expect(listed(w, model).state).toBe('healthy');
    });
    // Each instance loaded the model it writes, for its timer, and not the other.
    for (const w of both) expect(w.warden.residency().models).toBe(1);
  });
});

/**
 * A severe regression of m1 held for approval, the actor passivated after IDLE_S (or kept resident), and its
 * approval's deadline passing while no lease is held here: nothing runs. Returns with the lease still shown
 * as not held (`notHeld`, a spy to restore); the caller disposes of the instance.
 */
async function approvalDueWhileLeaseAway(prefix: string, passivated: boolean) {
  const clock = new ManualClock();
  const w = await startNatsWarden(nats.server.url, {
    config: { ...config(prefix), passivateAfterSeconds: passivated ? IDLE_S : null },
    clock,
  });
  const t0 = clock.now();
  for (const version of ['v1', 'v2']) await w.warden.promote({ model_id: 'm1', version, elo: 1500 });
  expect((await w.warden.evaluate({ model_id: 'm1', current_elo: 1440, games_played: 100 })).state).toBe(
    'awaitingApproval',
  );
  await advance(w, clock, 30_000);
  expect(w.warden.residency().models).toBe(passivated ? 0 : 1);
  const notHeld = vi.spyOn(Lease.prototype, 'isHeld', 'get').mockReturnValue(false);
  clock.advance(t0 + 60_000 - clock.now());
  await w.warden.idle();
  expect(listed(w, 'm1').state).toBe('awaitingApproval');
  return { w, clock, notHeld };
}

describe('a lease let go and taken back with the same epoch', () => {
  // The watchdog lets the lease go when a renewal is late (NATS away for a moment); if nobody took it
  // meanwhile, this instance takes it back under the same epoch. A timer that came due in between did not
  // run here (the instance did not write the actor then), and must run once the lease is back. Nobody else
  // held the lease, so nothing is claimed again (a write per actor, for nothing): the runtime's own look,
  // every second while it does not write an actor, finds the deadline passed and runs it.
  for (const passivated of [false, true]) {
    it(`runs a timer that came due meanwhile (${passivated ? 'a passivated actor' : 'a resident actor'})`, async () => {
      const prefix = passivated ? 'retakep' : 'retaker';
      const leases: Lease[] = [];
      const start = Lease.prototype.start;
      vi.spyOn(Lease.prototype, 'start').mockImplementation(function (this: Lease) {
        leases.push(this);
        start.call(this);
      });
      // Not held while the approval's deadline passes: nothing runs here.
      const away = await approvalDueWhileLeaseAway(prefix, passivated);
      await using w = away.w;
      const { clock } = away;
      away.notHeld.mockRestore();

      // Taken back, the same epoch (what Lease.attempt does when the entry is still its own).
      const lease = leases.find((l) => (l as unknown as { key: string }).key === 'inputs')!;
      const epoch = lease.epoch;
      const set = (lease as unknown as { set(held: boolean): void }).set.bind(lease);
      const claims = vi.spyOn(w.adapters.store as KvStore, 'claimAll');
      set(false);
      set(true);
      expect(lease.epoch).toBe(epoch);
      expect(claims).not.toHaveBeenCalled();
      // Looked at again a second after its deadline found the lease away.
      await eventually(() => {
        clock.advance(1_000);
        expect(listed(w, 'm1').state).not.toBe('awaitingApproval');
      });
      await w.settled();
      expect(await stored(prefix, 'promotion_rolled_back')).toHaveLength(1);
    });

    // The claim that follows the lease's return is what told the runtime; it can fail (NATS away again for a
    // moment). The deadline that passed while the lease was not held must not depend on it.
    it(`runs a timer that came due meanwhile when the claim that follows fails (${passivated ? 'a passivated actor' : 'a resident actor'})`, async () => {
      // Not held while the approval's deadline passes; then held again, and every claim fails.
      const prefix = passivated ? 'noclaimp' : 'noclaimr';
      const away = await approvalDueWhileLeaseAway(prefix, passivated);
      await using w = away.w;
      const { clock } = away;
      const store = w.adapters.store as KvStore;
      vi.spyOn(store, 'claim').mockRejectedValue(new Error('NATS away again'));
      away.notHeld.mockRestore();
      await store.claimAll(1).catch(() => undefined);

      await eventually(() => {
        clock.advance(1_000);
        expect(listed(w, 'm1').state).not.toBe('awaitingApproval');
      });
      await w.settled();
      expect(await stored(prefix, 'promotion_rolled_back')).toHaveLength(1);
    });
  }

  // Failing once, the claim is made again once NATS answers (the store's part); failing for good, the runtime
  // looks at what the state calls for every second, and runs it once it writes the actor (its own part).
  for (const failing of ['once', 'always'] as const) {
    it(`runs a rollback that could not be tried while the lease was away when the claim that follows fails ${failing}`, async () => {
      const prefix = `noclaimrb${failing}`;
      const clock = new ManualClock();
      // The first rollback call is held, then refused as one that cannot be tried here (the lease is away).
      let release: (() => void) | null = null;
      const held = new Promise<void>((resolve) => (release = resolve));
      let calls = 0;
      await using w = await startNatsWarden(nats.server.url, {
        config: { ...config(prefix), passivateAfterSeconds: null },
        clock,
        wrapRegistry: (registry) =>
          registryWith(registry, {
            rollback: async (request) => {
              if (calls++ > 0) return registry.rollback(request);
              await held;
              throw new WardenError('unavailable', 'this instance does not hold the model', {
                retryable: true,
              });
            },
          }),
      });
      for (const version of ['v1', 'v2']) await w.warden.promote({ model_id: 'm1', version, elo: 1500 });
      // Critical: rolled back at once, no approval.
      await w.warden.evaluate({ model_id: 'm1', current_elo: 1380, games_played: 200 });
      expect(listed(w, 'm1').state).toBe('rollingBack');
      const notHeld = vi.spyOn(Lease.prototype, 'isHeld', 'get').mockReturnValue(false);
      release!();
      // The rollback is tried again a second later, and is not this instance's then.
      await eventually(() => expect(calls).toBe(1));
      for (let i = 0; i < 3; i++) {
        await w.warden.idle();
        clock.advance(1_000);
      }
      expect(listed(w, 'm1').state).toBe('rollingBack');

      // The lease is back; the claim that would tell the runtime fails (NATS away again).
      const store = w.adapters.store as KvStore;
      const claim = store.claim.bind(store);
      const claims = vi.spyOn(store, 'claim');
      if (failing === 'once')
        claims
          .mockRejectedValueOnce(new Error('NATS away again'))
          .mockImplementation((...args) => claim(...args));
      else claims.mockRejectedValue(new Error('NATS away for good'));
      notHeld.mockRestore();
      await store.claimAll(1).catch(() => undefined);
      await eventually(() => {
        clock.advance(1_000);
        expect(listed(w, 'm1').state).not.toBe('rollingBack');
      });
      await w.settled();
      expect(await stored(prefix, 'promotion_rolled_back')).toHaveLength(1);
      // The claim that failed was made again.
      if (failing === 'once')
        await eventually(() =>
          expect(claims.mock.calls.filter(([key]) => key === 'm1').length).toBeGreaterThan(1),
        );
    });
  }
});
