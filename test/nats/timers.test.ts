/**
 * Timers fired early, on time and late, across restarts, in NATS mode with idle actors passivated (issue 14;
 * test/core/timers.test.ts holds the same to the embedded mode): every approval expires, every rollback
 * pauses its config, every cooldown ends and every config resumes by itself, each exactly once, whether
 * an actor's deadline is met by its own timer, by the deadline index after it was passivated, or by a new
 * instance after a restart.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden, type NatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { eventsPerActor, onceEach } from '../support/event-counts.ts';

const nats = useSharedNats();
const MODELS = Array.from({ length: 6 }, (_, i) => `m${i}`);

const config = (prefix: string): ConfigInput => ({
  detection: { mode: 'threshold' },
  approval: { requireForSevere: true, timeoutSeconds: 60, onTimeout: 'rollback' },
  cooldownSeconds: 120,
  training: { autoResumeSeconds: 300 },
  passivateAfterSeconds: 20,
  nats: { prefix },
});

let runs = 0;

/**
 * Every model held for approval at staggered deadlines, then the drawn steps: time moves on, and now and
 * then an instance is stopped and a new one started (with two, the one taking the inputs or the standby).
 */
async function deadlinesActOnce(
  instances: 1 | 2,
  skews: number[],
  steps: Array<{ advance: number; restart: number }>,
): Promise<void> {
  const prefix = `timers${runs++}`;
  let n = 0;
  // Timers of more than a few ms fire early or late by the drawn skews; a re-armed rest fires on time.
  const skew = (delay: number) => (delay > 5 ? skews[n++ % skews.length]! : 0);
  const clock = new ManualClock(Date.UTC(2026, 0, 1), { skew });
  const start = () => startNatsWarden(nats.server.url, { config: config(prefix), clock });
  const running: NatsWarden[] = [];
  for (let i = 0; i < instances; i++) running.push(await start());
  const settled = () => Promise.all(running.map((w) => w.settled()));
  /** The instance taking the inputs (the other one, if any, stands by and follows). */
  const active = () =>
    eventually(() => {
      const found = running.find((w) => w.adapters.role() === 'active');
      expect(found, 'an instance takes the inputs').toBeDefined();
      return found!;
    });
  try {
    for (const [i, model] of MODELS.entries()) {
      const w = await active();
      for (const version of ['v1', 'v2']) await w.warden.promote({ model_id: model, version, elo: 1500 });
      const held = await w.warden.evaluate({ model_id: model, current_elo: 1440, games_played: 100 });
      expect(held.state).toBe('awaitingApproval');
      // Staggered deadlines, so that restarts and advances fall between them.
      clock.advance(1_000 + i * 7_001);
      await settled();
    }
    for (const step of steps) {
      clock.advance(step.advance);
      await settled();
      if (step.restart < instances) {
        const taking = await active();
        const stopped = running.find((w) => (w === taking) === (step.restart === 0))!;
        await stopped.stop();
        running.splice(running.indexOf(stopped), 1, await start());
      }
    }
    // Then long enough for everything still due.
    for (let i = 0; i < 30; i++) {
      clock.advance(30_000);
      await settled();
    }
    const counts = async (kind: string, field: 'model_id' | 'config_key') =>
      Object.fromEntries(
        MODELS.map((m) => [m, 0]).concat(
          Object.entries(await eventsPerActor(nats.client, prefix, kind, field)),
        ),
      );
    const once = onceEach(MODELS);
    expect(await counts('promotion_rolled_back', 'model_id'), 'rolled back').toEqual(once);
    expect(await counts('training_paused', 'config_key'), 'paused').toEqual(once);
    expect(await counts('training_resumed', 'config_key'), 'auto-resumed').toEqual(once);
    for (const w of running) {
      for (const model of MODELS) {
        expect(w.warden.status(model).models[0]!.state, `${model} cooldown ended`).toBe('healthy');
        expect(w.warden.trainingStatus(model).status, `${model} running`).toBe('running');
      }
    }
  } finally {
    for (const w of running) await w.stop();
  }
}

// Early (as Node's timers often are), on time, or late.
const skews = fc.array(
  fc.oneof(fc.integer({ min: -3, max: -1 }), fc.constant(0), fc.integer({ min: 1, max: 2_000 })),
  { minLength: 1, maxLength: 16 },
);
/** restart: 0 stops the instance taking the inputs, 1 the standby (with two), above that nothing. */
const steps = fc.array(
  fc.record({ advance: fc.integer({ min: 1, max: 90_000 }), restart: fc.integer({ min: 0, max: 5 }) }),
  { minLength: 4, maxLength: 14 },
);

describe('timers never get stuck in NATS mode', () => {
  it('early, on time and late, passivated and across restarts: each deadline acts exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(skews, steps, (s, t) => deadlinesActOnce(1, s, t)),
      { numRuns: 20 },
    );
  }, 120_000);

  it('the same with two instances, the standby following: one of them stopped now and then', async () => {
    await fc.assert(
      fc.asyncProperty(skews, steps, (s, t) => deadlinesActOnce(2, s, t)),
      { numRuns: 10 },
    );
  }, 120_000);
});
