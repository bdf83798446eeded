/**
 * Timers that come due while NATS is away (issue 14 in NATS mode, against a real outage): they fire, their
 * commits fail, and the lease lapses while they are tried again. When NATS is back and the lease is taken
 * again, every approval expires, every rollback pauses its training config, every cooldown ends and every
 * config resumes, each exactly once, whether the actors were passivated or resident when their deadlines
 * passed.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden, type NatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { eventsPerActor, onceEach } from '../support/event-counts.ts';

const nats = useSharedNats();

const MODELS = Array.from({ length: 6 }, (_, i) => `m${i}`);
const APPROVAL_S = 60;
const COOLDOWN_S = 120;
const RESUME_S = 300;
/** Longer than the tests' 2 s lease TTL, so that the lease lapses while NATS is away. */
const OUTAGE_MS = 3_500;

const config = (prefix: string, passivate: number | null): ConfigInput => ({
  detection: { mode: 'threshold' },
  approval: { requireForSevere: true, timeoutSeconds: APPROVAL_S, onTimeout: 'rollback' },
  cooldownSeconds: COOLDOWN_S,
  training: { autoResumeSeconds: RESUME_S },
  passivateAfterSeconds: passivate,
  nats: { prefix },
});

const perActor = (prefix: string, kind: string, field: 'model_id' | 'config_key') =>
  eventsPerActor(nats.client, prefix, kind, field);

/** NATS goes away for longer than the lease TTL; `meanwhile` runs while it is away. */
async function outage(mode: 'stop' | 'freeze', meanwhile: () => void): Promise<void> {
  const started = Date.now();
  if (mode === 'freeze') nats.server.signal('SIGSTOP');
  else await nats.server.stop();
  try {
    meanwhile();
    // The fault's length itself, not a wait for something to happen.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - started))));
  } finally {
    if (mode === 'freeze') nats.server.signal('SIGCONT');
    else await nats.server.start();
  }
}

/** Moves the clock in steps of a second, so that each timer fires near its own deadline. */
function walk(clock: ManualClock, ms: number): void {
  for (let left = ms; left > 0; left -= 1_000) clock.advance(Math.min(1_000, left));
}

async function settle(w: NatsWarden): Promise<void> {
  await eventually(() => w.settled(), { timeoutMs: 20_000 });
}

describe('timers that come due while NATS is away', () => {
  for (const mode of ['stop', 'freeze'] as const) {
    for (const passivate of [10, null]) {
      const actors = passivate === null ? 'resident' : 'passivated';
      it(`run once each when NATS is back (${actors} actors, NATS ${mode === 'stop' ? 'stopped' : 'frozen'})`, async () => {
        const prefix = `away${mode}${passivate ?? 'r'}`;
        const clock = new ManualClock();
        await using w = await startNatsWarden(nats.server.url, { config: config(prefix, passivate), clock });
        const t0 = clock.now();
        // Severe regressions held for approval, their deadlines a second apart.
        for (const model of MODELS) {
          for (const version of ['v1', 'v2']) await w.warden.promote({ model_id: model, version, elo: 1500 });
          const held = await w.warden.evaluate({ model_id: model, current_elo: 1440, games_played: 100 });
          expect(held.state).toBe('awaitingApproval');
          clock.advance(1_000);
        }
        await w.settled();
        walk(clock, 30_000);
        await w.settled();
        if (passivate !== null) expect(w.warden.residency()).toMatchObject({ models: 0, trainings: 0 });

        // Every approval's deadline passes while NATS is away.
        await outage(mode, () => walk(clock, t0 + APPROVAL_S * 1_000 + MODELS.length * 1_000 - clock.now()));
        await eventually(
          async () => {
            // Time goes on while NATS comes back (a timer that failed is tried again a second later).
            clock.advance(250);
            await w.settled();
            expect(await perActor(prefix, 'promotion_rolled_back', 'model_id')).toEqual(onceEach(MODELS));
            expect(await perActor(prefix, 'training_paused', 'config_key')).toEqual(onceEach(MODELS));
          },
          { timeoutMs: 20_000, intervalMs: 250 },
        );
        for (const model of MODELS)
          expect(w.warden.status(model).models[0], model).toMatchObject({
            state: 'cooldown',
            production_version: 'v1',
          });

        // The cooldowns end and the configs resume, each once, with NATS here again; then NATS goes away
        // once more across the auto-resume deadlines.
        walk(clock, COOLDOWN_S * 1_000);
        await settle(w);
        for (const model of MODELS) expect(w.warden.status(model).models[0]!.state, model).toBe('healthy');
        await outage(mode, () => walk(clock, RESUME_S * 1_000));
        await eventually(
          async () => {
            // Time goes on while NATS comes back (a timer that failed is tried again a second later).
            clock.advance(250);
            await w.settled();
            expect(await perActor(prefix, 'training_resumed', 'config_key')).toEqual(onceEach(MODELS));
          },
          { timeoutMs: 20_000, intervalMs: 250 },
        );
        for (const model of MODELS) expect(w.warden.trainingStatus(model).status, model).toBe('running');
        expect(await perActor(prefix, 'promotion_rolled_back', 'model_id')).toEqual(onceEach(MODELS));
        expect(await perActor(prefix, 'training_paused', 'config_key')).toEqual(onceEach(MODELS));
      }, 90_000);
    }
  }
});
