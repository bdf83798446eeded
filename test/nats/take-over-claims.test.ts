/**
 * What a lease's holder writes when it takes over, and when its lease hiccups. Claiming an actor (a
 * revision-checked write marking it with the lease's epoch) fences off a previous holder and hands the
 * runtime what the actor's state calls for. A new epoch claims the actors whose state needs the runtime now
 * (here: a model waiting for an approval, with its deadline); a quiet model is claimed by the intake before
 * its first input under the epoch. A lease kept through a reconnection, or taken back under the same epoch
 * after a late renewal let it go, had no other holder: nothing to fence, nothing claimed. Before, every
 * start, take-over, reconnection and hiccup claimed every actor the instance knew: a write per model, 10,000
 * writes for a second's stall at 10,000 models, and a stall during that storm could start another.
 */
import { Kvm } from '@nats-io/kv';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { Lease } from '../../src/nats/lease.ts';
import { useCuttingProxy } from '../harness/cutting-proxy.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden, type NatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const nats = useSharedNats();
const cutting = useCuttingProxy(nats);
afterEach(() => vi.restoreAllMocks());

const MODELS = 30;

/** The revision of every model's value in the actor bucket. */
async function revisions(prefix: string): Promise<number[]> {
  const actors = await new Kvm(nats.client.nc).open(`${prefix}_actors`);
  const out: number[] = [];
  for (let i = 0; i < MODELS; i++) out.push((await actors.get(`model.m${i}`))!.revision);
  return out;
}

/**
 * Once every model's value is done with: its promotion's registry write recorded as done (the start-up
 * index's attention flag cleared), its timeline line moved to the timeline bucket (by the instances of
 * `withModels` at their next sweep, not a minute later). Those two writes come in either order.
 */
async function settledRevisions(prefix: string): Promise<number[]> {
  const actors = await new Kvm(nats.client.nc).open(`${prefix}_actors`);
  await eventually(async () => {
    for (let i = 0; i < MODELS; i++) {
      const value = (await actors.get(`model.m${i}`))!.json<{ timeline: unknown[]; attention: boolean }>();
      expect(value.timeline).toEqual([]);
      expect(value.attention).toBe(false);
    }
  });
  return revisions(prefix);
}

/** The input leases the instances started from now on take, newest last. */
function inputLeases(): Lease[] {
  const leases: Lease[] = [];
  const start = Lease.prototype.start;
  vi.spyOn(Lease.prototype, 'start').mockImplementation(function (this: Lease) {
    if ((this as unknown as { key: string }).key === 'inputs' && !leases.includes(this)) leases.push(this);
    start.call(this);
  });
  return leases;
}

/** An instance through the cutting proxy with MODELS promoted models, and the input lease it took. */
async function withModels(prefix: string): Promise<{ w: NatsWarden; lease: Lease }> {
  const leases = inputLeases();
  const w = await startNatsWarden(cutting.proxy.url, {
    config: { detection: { mode: 'threshold' }, nats: { prefix } },
    hooks: { store: { timelineMoveAfterMs: 0 } },
  });
  for (let i = 0; i < MODELS; i++) await w.warden.promote({ model_id: `m${i}`, version: 'v1', elo: 1500 });
  await w.settled();
  return { w, lease: leases[0]! };
}

/** A promotion published as a pipeline would, until this instance has applied it. */
async function promotedOverNats(w: NatsWarden, prefix: string, model: string): Promise<void> {
  await nats.client.publish(`${prefix}.in.promotion.${model}`, { model_id: model, version: 'v1' });
  await eventually(() => expect(w.warden.status().models.map((m) => m.model_id)).toContain(model));
  await w.settled();
}

describe('a take-over', () => {
  it('claims the model whose state needs the runtime, not the quiet ones; a quiet one is claimed at its first input', async () => {
    const prefix = 'takeover';
    const leases = inputLeases();
    const config = {
      detection: { mode: 'threshold' as const },
      approval: { requireForSevere: true, timeoutSeconds: 60, onTimeout: 'rollback' as const },
      nats: { prefix },
    };
    const clocks = [new ManualClock(), new ManualClock()];
    const a = await startNatsWarden(nats.server.url, { config, clock: clocks[0]! });
    for (let i = 0; i < MODELS; i++) await a.warden.promote({ model_id: `m${i}`, version: 'v1', elo: 1500 });
    for (const version of ['v1', 'v2']) await a.warden.promote({ model_id: 'held', version, elo: 1500 });
    // Severe: held for approval, with its deadline.
    const held = await a.warden.evaluate({ model_id: 'held', current_elo: 1440, games_played: 100 });
    expect(held.state).toBe('awaitingApproval');
    await a.settled();
    await a[Symbol.asyncDispose]();
    const actors = await new Kvm(nats.client.nc).open(`${prefix}_actors`);
    const heldBefore = (await actors.get('model.held'))!.revision;
    const before = await revisions(prefix);

    // The next holder, under a new epoch.
    await using b = await startNatsWarden(nats.server.url, { config, clock: clocks[1]! });
    const epoch = leases[1]!.epoch;
    expect(epoch).toBeGreaterThan(leases[0]!.epoch);
    await eventually(async () => {
      const entry = (await actors.get('model.held'))!;
      expect(entry.revision).toBeGreaterThan(heldBefore);
      expect(entry.json<{ epoch: number }>().epoch).toBe(epoch);
    });
    await b.settled();
    expect(await revisions(prefix)).toEqual(before);

    // A quiet model's first input under the new epoch: claimed, then applied, once.
    await nats.client.publish(`${prefix}.in.evaluation.m0`, {
      event_id: 'm0-after',
      model_id: 'm0',
      current_elo: 1499,
      games_played: 200,
    });
    await eventually(async () => {
      const value = (await actors.get('model.m0'))!.json<{
        epoch: number;
        snapshot: { snapshot: { context: { recentInputIds: string[] } } };
      }>();
      expect(value.epoch).toBe(epoch);
      expect(value.snapshot.snapshot.context.recentInputIds).toEqual(['m0-after']);
    });
    // The held model's deadline acts on the new holder: rolled back once.
    clocks[1]!.advance(61_000);
    await eventually(async () => {
      clocks[1]!.advance(1_000);
      await b.settled();
      expect(
        await nats.client.stored(`${prefix}.evt.promotion_rolled_back.>`, `${prefix.toUpperCase()}_EVENTS`),
      ).toHaveLength(1);
    });
  });
});

describe('a hiccup of the input lease', () => {
  it('a reconnection with the lease still held writes no actor, and inputs go on', async () => {
    const prefix = 'hiccupconn';
    const { w, lease } = await withModels(prefix);
    await using _ = w;
    const before = await settledRevisions(prefix);
    const epoch = lease.epoch;

    // A registry write whose answer is lost: the connection goes, and the client reconnects. (Not a lease
    // renewal: one that landed unanswered is taken for another holder's write, and the lease's next epoch
    // is claimed, rightly.)
    const cut = cutting.proxy.cutAfter((p) => p.subject === `$KV.${prefix}_registry.cut`);
    await nats.client.publish(`${prefix}.in.promotion.cut`, { model_id: 'cut', version: 'v1' });
    await cut;
    await promotedOverNats(w, prefix, 'after');

    expect(lease.isHeld).toBe(true);
    expect(lease.epoch).toBe(epoch);
    expect(await revisions(prefix)).toEqual(before);
  });

  it('a lease taken back under the same epoch writes no actor, and inputs go on', async () => {
    const prefix = 'hiccupretake';
    const { w, lease } = await withModels(prefix);
    await using _ = w;
    const before = await settledRevisions(prefix);
    const epoch = lease.epoch;

    // What the watchdog does on a late renewal, then what the next attempt does when the entry is still its own.
    const set = (lease as unknown as { set(held: boolean): void }).set.bind(lease);
    set(false);
    set(true);
    await promotedOverNats(w, prefix, 'after');

    expect(lease.epoch).toBe(epoch);
    expect(await revisions(prefix)).toEqual(before);
  });
});
