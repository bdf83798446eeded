import { describe, expect, it } from 'vitest';
import type { StateStore } from '../../src/actors/ports.ts';
import { interceptCommits } from '../support/commit-interceptor.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const nats = useSharedNats();

/** A store whose commits fail (an internal error, not bad input) whenever the snapshot mentions `poison`. */
function poisonedStore(inner: StateStore, poison: string): StateStore {
  return interceptCommits(inner, (part) =>
    JSON.stringify(part.actors[0]?.snapshot).includes(poison)
      ? new Error(`disk on fire while writing ${poison}`)
      : null,
  );
}

describe('inputs that keep failing over NATS', () => {
  it('go to the dead letter with their error and an alert, and the inputs behind them are processed', async () => {
    await using w = await startNatsWarden(nats.server.url, {
      hooks: { retry: { maxDeliveries: 3, baseDelayMs: 20, maxDelayMs: 50 } },
      wrapStore: (store) => poisonedStore(store, '"v666"'),
    });
    const model = 'dl_model';
    await nats.client.publish(`warden.in.promotion.${model}`, { model_id: `${model}_v1`, elo: 1500 });
    await nats.client.publish(`warden.in.promotion.${model}`, { model_id: `${model}_v666`, elo: 1510 });
    // Behind it: the same model, and another one.
    await nats.client.publish(`warden.in.promotion.${model}`, { model_id: `${model}_v2`, elo: 1520 });
    await nats.client.publish('warden.in.promotion.dl_other', { model_id: 'dl_other_v1', elo: 1500 });

    const dead = await eventually(async () => {
      const stored = await nats.client.stored('warden.evt.dead_letter.>');
      expect(stored).toHaveLength(1);
      return stored[0]!;
    });
    expect(dead.subject).toBe('warden.evt.dead_letter.promotion');
    expect(dead.data).toMatchObject({
      subject: `warden.in.promotion.${model}`,
      attempts: 3,
      stream_sequence: expect.any(Number),
      error: { code: 'internal', message: expect.stringContaining('disk on fire') },
      raw: expect.stringContaining('v666'),
    });
    const alerts = await eventually(async () => {
      const stored = await nats.client.stored(`warden.evt.alert.${model}`);
      expect(stored).toHaveLength(1);
      return stored;
    });
    expect(alerts[0]!.data).toMatchObject({
      kind: 'input_dead_lettered',
      level: 'critical',
      model_id: model,
      config_key: model,
      message: expect.stringContaining('warden.evt.dead_letter.promotion'),
    });

    await w.settled();
    // Still running, and everything around the poisoned input applied, in order.
    expect(w.warden.status(model).models[0]!.versions.map((v) => v.version)).toEqual(['v1', 'v2']);
    expect(w.warden.status('dl_other').models[0]!.production_version).toBe('v1');
    const last = (await nats.client.jsm.streams.info('WARDEN_IN')).state.last_seq;
    await eventually(async () =>
      expect((await nats.client.jsm.consumers.info('WARDEN_IN', 'warden_inputs')).ack_floor.stream_seq).toBe(
        last,
      ),
    );
    // Counted among the refused inputs, under its kind.
    expect(w.rejected.get('promotion')).toBe(1);
  });

  it('counts 300 invented input kinds under one label and one rejected subject', async () => {
    const metrics = createMetrics();
    await using w = await startNatsWarden(nats.server.url, { onRejected: metrics.onRejected });
    for (let i = 0; i < 300; i++) {
      await nats.client.publish(`warden.in.kind_${i}.m${i}`, { model_id: `m${i}`, games_played: 1 });
    }
    await nats.client.publish('warden.in.bogus', { model_id: 'x', games_played: 1 });
    await w.settled();
    expect(w.rejected).toEqual(new Map([['unknown', 301]]));
    const text = await metrics.render();
    expect(text).toContain('warden_rejected_inputs_total{kind="unknown",reason="invalid_input"} 301');
    expect(text).not.toMatch(/kind_\d/);
    // One series for all of them: invented kinds cannot grow /metrics.
    expect(text.split('\n').filter((l) => l.startsWith('warden_rejected_inputs_total{'))).toHaveLength(1);
    const subjects = new Set((await nats.client.stored('warden.evt.rejected.>')).map((m) => m.subject));
    expect(subjects).toEqual(new Set(['warden.evt.rejected.unknown']));
  });
});
