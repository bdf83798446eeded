/**
 * A hiccup of the input lease costs no write per actor. Claiming an actor (a revision-checked write marking
 * it with the lease's epoch) fences off a previous holder; a lease kept through a reconnection, or taken back
 * under the same epoch after a late renewal let it go, had no other holder, so there is nobody to fence.
 * Before, each of them claimed every actor the instance knew: a second's stall of the event loop at 10,000
 * models wrote 10,000 values, and a stall during that storm could start another.
 */
import { Kvm } from '@nats-io/kv';
import { afterEach, describe, expect, it, vi } from 'vitest';
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

/** An instance through the cutting proxy with MODELS promoted models, and the input lease it took. */
async function withModels(prefix: string): Promise<{ w: NatsWarden; lease: Lease }> {
  const leases: Lease[] = [];
  const start = Lease.prototype.start;
  vi.spyOn(Lease.prototype, 'start').mockImplementation(function (this: Lease) {
    leases.push(this);
    start.call(this);
  });
  const w = await startNatsWarden(cutting.proxy.url, {
    config: { detection: { mode: 'threshold' }, nats: { prefix } },
  });
  for (let i = 0; i < MODELS; i++) await w.warden.promote({ model_id: `m${i}`, version: 'v1', elo: 1500 });
  await w.settled();
  const lease = leases.find((l) => (l as unknown as { key: string }).key === 'inputs')!;
  return { w, lease };
}

/** A promotion published as a pipeline would, until this instance has applied it. */
async function promotedOverNats(w: NatsWarden, prefix: string, model: string): Promise<void> {
  await nats.client.publish(`${prefix}.in.promotion.${model}`, { model_id: model, version: 'v1' });
  await eventually(() => expect(w.warden.status().models.map((m) => m.model_id)).toContain(model));
  await w.settled();
}

describe('a hiccup of the input lease', () => {
  it('a reconnection with the lease still held writes no actor, and inputs go on', async () => {
    const prefix = 'hiccupconn';
    const { w, lease } = await withModels(prefix);
    await using _ = w;
    const before = await revisions(prefix);
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
    const before = await revisions(prefix);
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
