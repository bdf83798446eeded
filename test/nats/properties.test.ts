/**
 * Issue 8 over NATS, with a real nats-server: property-based tests of the whole input path. Any byte string
 * and any JSON value published on an input subject (any kind token, any model token) ends in a refusal on
 * `warden.evt.rejected.*` or in its effect, never a crash; the good promotions interleaved with them all
 * take effect; and a promotion that arrives while its model is rolling back is applied when the rollback
 * ends (finding 3: it used to be acknowledged as `busy` and lost).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const nats = useSharedNats();

const subject = fc.oneof(
  fc.constantFrom(
    'warden.in.evaluation.prop_model',
    'warden.in.promotion.prop_model',
    'warden.in.evaluation.ghost',
    'warden.in.result.prop_model',
  ),
  fc.stringMatching(/^[a-z_]{1,12}$/).map((kind) => `warden.in.${kind}.prop_model`),
);

const payload = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.string({ maxLength: 200 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
  // Shaped like the inputs, with hostile values.
  fc
    .record(
      {
        model_id: fc.oneof(fc.constantFrom('prop_model', 'prop_model_v9', '', 'x'.repeat(200)), fc.string()),
        version: fc.oneof(fc.constantFrom('v1', 'v 1', ''), fc.string({ maxLength: 10 })),
        games_played: fc.oneof(fc.integer(), fc.double(), fc.constant(1e9)),
        wins: fc.integer({ min: -1, max: 1e9 }),
        draws: fc.integer({ min: -1, max: 1e9 }),
        losses: fc.integer({ min: -1, max: 1e9 }),
        current_elo: fc.oneof(fc.double(), fc.string({ maxLength: 4 })),
        event_id: fc.string({ maxLength: 20 }),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
);

/** Schema-valid evaluations with counts up to the schema's limit, all wins, all losses, all draws, or mixed. */
const extreme = fc
  .tuple(
    fc.oneof(fc.constantFrom(0, 1, 5_000_000, 1e9), fc.integer({ min: 0, max: 1e9 })),
    fc.oneof(fc.constantFrom(0, 25_000_000), fc.integer({ min: 0, max: 1e9 })),
    fc.oneof(fc.constantFrom(0, 4_000_000), fc.integer({ min: 0, max: 1e9 })),
  )
  .map(([w, d, l]) => {
    const scale = w + d + l > 1e9 ? 1e9 / (w + d + l) : 1;
    const [wins, draws, losses] = [w, d, l].map((x) => Math.floor(x * scale)) as [number, number, number];
    return { model_id: 'prop_model', wins, draws, losses, games_played: wins + draws + losses };
  })
  .filter((e) => e.games_played > 0)
  .map((e) => JSON.stringify(e));

describe('the whole NATS input path, property-based', () => {
  it('any message ends in a refusal or its effect; every good promotion around it takes effect', async () => {
    await using w = await startNatsWarden(nats.server.url, { clock: new ManualClock() });
    const published = { good: 0 };
    await nats.client.publish('warden.in.promotion.prop_model', { model_id: 'prop_model', version: 'v0' });
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.tuple(subject, payload),
            fc.tuple(fc.constant('warden.in.evaluation.prop_model'), extreme),
          ),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        async (messages) => {
          for (const [s, body] of messages) await nats.client.publish(s, body);
          published.good++;
          const version = `g${published.good}`;
          await nats.client.publish('warden.in.promotion.prop_model', {
            model_id: 'prop_model',
            version,
            event_id: `good-${version}`,
          });
          // The good promotion behind the hostile messages takes effect (or waits for a rollback to end).
          await eventually(
            async () => {
              await w.settled();
              const model = w.warden.status('prop_model').models[0]!;
              expect(model.versions.map((v) => v.version)).toContain(version);
            },
            { timeoutMs: 15_000 },
          );
        },
      ),
      { numRuns: 25 },
    );
    // Alive, and every refusal was published with a reason and counted under bounded kinds.
    const rejected = await nats.client.stored('warden.evt.rejected.>');
    for (const r of rejected) {
      expect((r.data as { error: { code: string; message: string } }).error.message.length).toBeGreaterThan(
        0,
      );
    }
    expect(w.rejected.size).toBeLessThanOrEqual(12);
    expect(w.adapters.ready()).toBe(true);
  }, 240_000);

  it('a promotion that arrives while its model rolls back is applied when the rollback ends', async () => {
    await using w = await startNatsWarden(nats.server.url, {
      clock: new ManualClock(),
      config: { detection: { mode: 'threshold' }, nats: { prefix: 'deferral' } },
    });
    const p = 'deferral.in';
    for (let i = 0; i < 10; i++) {
      const model = `dm${i}`;
      for (const version of ['v1', 'v2'])
        await nats.client.publish(`${p}.promotion.${model}`, { model_id: model, version, elo: 1500 });
      // CRITICAL, then a promotion of v3 right behind it: v3 arrives while v2 is being rolled back.
      await nats.client.publish(`${p}.evaluation.${model}`, {
        model_id: model,
        current_elo: 1400,
        games_played: 100,
      });
      await nats.client.publish(`${p}.promotion.${model}`, { model_id: model, version: 'v3', elo: 1510 });
    }
    await eventually(
      async () => {
        await w.settled();
        for (let i = 0; i < 10; i++) {
          const model = w.warden.status(`dm${i}`).models[0]!;
          expect(model.production_version, `dm${i}`).toBe('v3');
          expect(model.versions.find((v) => v.version === 'v2')?.rolled_back_from).toBe(true);
        }
      },
      { timeoutMs: 30_000 },
    );
    const rolledBack = await nats.client.stored('deferral.evt.promotion_rolled_back.>', 'DEFERRAL_EVENTS');
    expect(rolledBack).toHaveLength(10);
  }, 60_000);
});
