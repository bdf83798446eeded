/**
 * A lane never moves past an input it did not apply. The input lease can be held but not valid for a
 * moment (a renewal late under load: this instance must not act, yet no other may take over). Inputs that
 * arrive then are not applied; if a later input of the same model were applied first, its position would
 * pass theirs, and when the server delivered them again they would be taken for duplicates and lost.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Lease } from '../../src/nats/lease.ts';
import type { KvStore } from '../../src/nats/kv-store.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const nats = useSharedNats();

afterEach(() => vi.restoreAllMocks());

describe('an input lease not valid for a moment', () => {
  it('leaves the inputs that came meanwhile first in their lane: a later input of the same model never overtakes them', async () => {
    const prefix = 'leasegap';
    await using w = await startNatsWarden(nats.server.url, { config: { nats: { prefix } } });
    const publish = (kind: string, body: object) =>
      nats.client.publish(`${prefix}.in.${kind}.m`, { model_id: 'm', ...body });
    await publish('promotion', { event_id: 'p1', model_id: 'm_v1', elo: 1500 });
    await w.settled();

    // Held, not valid: this instance may not act, and nobody else may either.
    const valid = vi.spyOn(Lease.prototype, 'valid').mockReturnValue(false);
    await publish('promotion', { event_id: 'p2', model_id: 'm_v2', elo: 1520 });
    await publish('evaluation', { event_id: 'e1', model_id: 'm_v2', current_elo: 1519, games_played: 200 });
    // Both delivered here, neither applied nor acknowledged.
    await eventually(async () => {
      const consumer = await nats.client.jsm.consumers.info(`${prefix.toUpperCase()}_IN`, `${prefix}_inputs`);
      expect(consumer.num_ack_pending).toBe(2);
      expect(consumer.num_pending).toBe(0);
    });
    valid.mockRestore();
    // Valid again; the model's next input arrives at once, long before the server's ack wait is over.
    await publish('promotion', { event_id: 'p3', model_id: 'm_v3', elo: 1530 });

    await eventually(async () => {
      await w.settled();
      const consumer = await nats.client.jsm.consumers.info(`${prefix.toUpperCase()}_IN`, `${prefix}_inputs`);
      expect(consumer.num_ack_pending + consumer.num_pending).toBe(0);
    });
    const model = w.warden.status('m').models[0]!;
    expect(model.versions.map((v) => v.version)).toEqual(['v1', 'v2', 'v3']);
    expect(model.production_version).toBe('v3');
    // e1 was applied too, in its place (v2 in production then): it is remembered as applied.
    expect((w.adapters.store as KvStore).hasApplied('m', 'e1')).toBe(true);
  });

  it('a registry write waiting for the lease ends once its instance gives the lease up: the stop does not wait for it', async () => {
    const prefix = 'leasegiven';
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let recorded: Promise<unknown> | null = null;
    const w = await startNatsWarden(nats.server.url, {
      config: { nats: { prefix } },
      // The registry write of v2's promotion waits at the gate, then goes to the real registry.
      wrapRegistry: (inner) =>
        Object.assign(Object.create(inner) as typeof inner, {
          recordPromotion: (modelId: string, version: string, at: number, reason: string) => {
            if (version !== 'v2') return inner.recordPromotion(modelId, version, at, reason);
            recorded = gate.then(() => inner.recordPromotion(modelId, version, at, reason));
            return recorded;
          },
        }),
    });
    let stopped = false;
    try {
      await w.warden.promote({ event_id: 'g1', model_id: 'm_v1', elo: 1500 });
      await w.warden.promote({ event_id: 'g2', model_id: 'm_v2', elo: 1500 });
      await eventually(() => expect(recorded).not.toBeNull());
      // Held, not valid (a renewal late): the write waits for the lease, a second at a time.
      vi.spyOn(Lease.prototype, 'valid').mockReturnValue(false);
      open();
      // Stopping gives the lease up: the write fails at once (retryable: the next writer reconciles the
      // pointer), and the stop ends (it took 10 s: ten waits of a second for a lease given up for good).
      await w.stop();
      stopped = true;
      await expect(recorded).rejects.toMatchObject({ code: 'unavailable' });
    } finally {
      vi.restoreAllMocks();
      if (!stopped) await w.stop();
    }
  }, 8_000);
});
