import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/domain/errors.ts';
import { startNatsWarden, type NatsWarden } from '../harness/nats-warden.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { registryWith } from '../support/registry-with.ts';
import { interceptCommits } from '../support/commit-interceptor.ts';

const nats = useSharedNats();

const MODELS = Array.from({ length: 12 }, (_, i) => `model_${i}`);
const EVALUATIONS_PER_ROUND = 6;

interface RolledBack {
  rollback_id: string;
  detection_id: string | null;
  model_id: string;
  from_version: string;
  to_version: string;
}

/** Every model regresses on `version`, reported several times over, all at once. */
async function regressEveryModel(round: number, version: string): Promise<void> {
  for (let i = 0; i < EVALUATIONS_PER_ROUND; i++) {
    for (const model of MODELS) {
      await nats.client.publish(`warden.in.evaluation.${model}`, {
        event_id: `${model}-r${round}-e${i}`,
        model_id: `${model}_${version}`,
        current_elo: 1400 - i,
        games_played: 200,
      });
    }
  }
}

async function rolledBack(expected: number): Promise<RolledBack[]> {
  return eventually(
    async () => {
      const events = (await nats.client.stored('warden.evt.promotion_rolled_back.>')).map(
        (e) => e.data as RolledBack,
      );
      expect(events).toHaveLength(expected);
      return events;
    },
    { timeoutMs: 15_000 },
  );
}

describe('several Warden instances on one NATS', () => {
  it('roll back exactly once per detection under a stream of regressions, and hand the inputs over when one stops', async () => {
    // No cooldown, so that each model can be rolled back again in the second round.
    const config = { cooldownSeconds: 0 };
    const evaluated = new Map<string, number>();
    const running: NatsWarden[] = [];
    const start = async (name: string) => {
      const w = await startNatsWarden(nats.server.url, {
        config,
        hooks: { clientName: name },
        observer: {
          outcome: (kind, _key, event) => {
            if (kind === 'model' && event === 'EVALUATED')
              evaluated.set(name, (evaluated.get(name) ?? 0) + 1);
          },
        },
      });
      running.push(w);
      return w;
    };
    try {
      const a = await start('a');
      const b = await start('b');
      const idle = () => Promise.all(running.map((w) => w.settled()));
      await eventually(() =>
        expect([a, b].map((w) => w.adapters.role()).sort()).toEqual(['active', 'standby']),
      );
      for (const model of MODELS) {
        await nats.client.publish(`warden.in.promotion.${model}`, {
          event_id: `${model}-p1`,
          model_id: `${model}_v1`,
          elo: 1500,
        });
        await nats.client.publish(`warden.in.promotion.${model}`, {
          event_id: `${model}-p2`,
          model_id: `${model}_v2`,
          elo: 1520,
        });
      }
      await regressEveryModel(1, 'v2');
      await rolledBack(MODELS.length);
      await idle();

      // The active instance stops: the other takes the inputs over, a third one joins as standby.
      const [active, standby] = a.adapters.role() === 'active' ? [a, b] : [b, a];
      const standbyName = standby === a ? 'a' : 'b';
      expect(evaluated.get(standbyName) ?? 0).toBe(0);
      await active.stop();
      running.splice(running.indexOf(active), 1);
      await eventually(() => expect(standby.adapters.role()).toBe('active'));
      await start('c');

      // Round 2: a new version, promoted and regressing right behind it.
      for (const model of MODELS) {
        await nats.client.publish(`warden.in.promotion.${model}`, {
          event_id: `${model}-p3`,
          model_id: `${model}_v3`,
          elo: 1530,
        });
      }
      await regressEveryModel(2, 'v3');
      const events = await rolledBack(2 * MODELS.length);
      await idle();
      expect(evaluated.get(standbyName)).toBeGreaterThan(0);

      // Exactly one rollback per detection, each with its own rollback id, to the last known-good version.
      const byDetection = new Map<string, number>();
      for (const e of events)
        byDetection.set(String(e.detection_id), (byDetection.get(String(e.detection_id)) ?? 0) + 1);
      expect([...byDetection.values()].every((n) => n === 1)).toBe(true);
      expect(byDetection.size).toBe(2 * MODELS.length);
      expect(new Set(events.map((e) => e.rollback_id)).size).toBe(events.length);
      for (const model of MODELS) {
        expect(
          events.filter((e) => e.model_id === model).map((e) => `${e.from_version}->${e.to_version}`),
        ).toEqual(['v2->v1', 'v3->v1']);
        expect(await nats.client.kv('warden_registry', model)).toMatchObject({ version: 'v1' });
      }
      // Each detection was announced once, and each config paused once (the second rollback found it paused).
      const detections = (await nats.client.stored('warden.evt.regression_detected.>')).map(
        (e) => (e.data as { detection_id: string }).detection_id,
      );
      expect(detections).toHaveLength(2 * MODELS.length);
      expect(new Set(detections).size).toBe(detections.length);
      const paused = (await nats.client.stored('warden.evt.training_paused.>')).map((e) => e.subject);
      expect(paused.sort()).toEqual(MODELS.map((m) => `warden.evt.training_paused.${m}`).sort());

      // Every instance sees the same models, whichever of them did the work.
      await eventually(() => expect(running[0]!.warden.status()).toEqual(running[1]!.warden.status()));
      expect(running[1]!.warden.status().models.map((m) => m.production_version)).toEqual(
        MODELS.map(() => 'v1'),
      );
    } finally {
      for (const w of running) await w.stop();
    }
  });

  it('an instance that takes the models over brings a pointer its predecessor could not write in line', async () => {
    const prefix = 'lagging';
    const config = { nats: { prefix } };
    // The first instance cannot write v2 to the registry (as if its lease were lost for every attempt).
    const a = await startNatsWarden(nats.server.url, {
      config,
      hooks: { clientName: 'a' },
      wrapRegistry: (registry) =>
        registryWith(registry, {
          recordPromotion: async (modelId, version, at, reason) => {
            if (version === 'v2')
              throw new WardenError('unavailable', `registry: this instance no longer takes ${modelId}`, {
                retryable: true,
              });
            return registry.recordPromotion(modelId, version, at, reason);
          },
        }),
    });
    const running = [a];
    try {
      await eventually(() => expect(a.adapters.role()).toBe('active'));
      const b = await startNatsWarden(nats.server.url, { config, hooks: { clientName: 'b' } });
      running.push(b);
      for (const version of ['v1', 'v2'])
        for (const model of ['m1', 'm2'])
          await nats.client.publish(`${prefix}.in.promotion.${model}`, {
            event_id: `${model}-${version}`,
            model_id: `${model}_${version}`,
            elo: 1500,
          });
      await eventually(() =>
        expect(b.warden.status().models.map((m) => m.production_version)).toEqual(['v2', 'v2']),
      );
      await a.settled();
      for (const model of ['m1', 'm2'])
        expect(await nats.client.kv(`${prefix}_registry`, model)).toMatchObject({ version: 'v1' });

      await a.stop();
      running.shift();
      await eventually(() => expect(b.adapters.role()).toBe('active'));
      await eventually(async () => {
        for (const model of ['m1', 'm2'])
          expect(await nats.client.kv(`${prefix}_registry`, model)).toMatchObject({
            version: 'v2',
            reason: 'reconciled',
          });
      });
    } finally {
      for (const w of running) await w.stop();
    }
  });

  it('a second instance is ready as a standby once it sees the lease renewed, not after the lease TTL', async () => {
    // A lease of 8 s, renewed every 2 s: an instance that waited out the TTL (and the half second after it)
    // to learn its role would not be ready within the test's bound.
    const options = {
      config: { nats: { prefix: 'joining' } },
      hooks: { jetstream: { leaseTtlMs: 8_000 } },
    };
    await using a = await startNatsWarden(nats.server.url, options);
    expect(a.adapters.role()).toBe('active');
    await using b = await startNatsWarden(nats.server.url, options);
    expect(b.adapters.role()).toBe('standby');
    expect(a.adapters.role()).toBe('active');
  }, 7_000);

  it('a standby refuses an input sent to it at once, as unavailable, saying where to send it', async () => {
    const config = { nats: { prefix: 'standbyin' } };
    await using active = await startNatsWarden(nats.server.url, { config });
    let attempts = 0;
    await using standby = await startNatsWarden(nats.server.url, {
      config,
      wrapStore: (store) =>
        interceptCommits(store, () => {
          attempts++;
          return null;
        }),
    });
    expect(standby.adapters.role()).toBe('standby');
    await active.warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
    const refused = standby.warden.promote({ model_id: 'm', version: 'v2', elo: 1520 });
    await expect(refused).rejects.toMatchObject({ code: 'unavailable', retryable: true });
    await expect(refused).rejects.toThrow(
      /model m: this instance does not take its inputs now \(it is a standby, or another instance holds its partition\): publish it on NATS/,
    );
    // One attempt: no attempt on this instance can succeed, so none is made again.
    expect(attempts).toBe(1);
    await active.warden.idle();
    expect(active.warden.status('m').models[0]!.production_version).toBe('v1');
  });
});
