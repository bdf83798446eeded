/**
 * Passivation is invisible in NATS mode too: the same random run of inputs, commands and time, once with
 * actors passivated after a few idle seconds and once with every actor resident, on two prefixes of one
 * nats-server, gives the same answers, the same states and the same events (per actor, in order). The
 * passivated actors come back from the KV store's copy of the bucket, their timers from the deadline index.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { OUTPUT_EVENTS } from '../../src/domain/events.ts';
import { startNatsWarden, type NatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const nats = useSharedNats();

const IDLE_S = 10;
const CONFIG: ConfigInput = {
  detection: { mode: 'threshold' },
  approval: { requireForSevere: true, timeoutSeconds: 60, onTimeout: 'rollback' },
  cooldownSeconds: 120,
  training: { autoResumeSeconds: 300 },
};

type Step =
  | { kind: 'promote'; model: number; version: number; elo: number }
  | { kind: 'evaluate'; model: number; elo: number; games: number }
  | { kind: 'approve' | 'reject' | 'resume'; model: number }
  | { kind: 'advance'; ms: number };

// Elo drops on every severity, and pauses both short (nothing passivated) and long (idle actors are, and
// deadlines fall due while they are).
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('promote' as const),
    model: fc.nat(2),
    version: fc.nat(4),
    elo: fc.constantFrom(1500, 1520),
  }),
  fc.record({
    kind: fc.constant('evaluate' as const),
    model: fc.nat(2),
    elo: fc.constantFrom(1510, 1495, 1475, 1460, 1440, 1400),
    games: fc.integer({ min: 20, max: 400 }),
  }),
  fc.record({
    kind: fc.constantFrom('approve' as const, 'reject' as const, 'resume' as const),
    model: fc.nat(2),
  }),
  fc.record({
    kind: fc.constant('advance' as const),
    ms: fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 15_000, max: 400_000 })),
  }),
);

const actorOfKind = new Map<string, string>(
  Object.values(OUTPUT_EVENTS).map((spec) => [
    spec.kind,
    spec.keyField === 'config_key' ? 'training' : 'model',
  ]),
);

/** Each actor's events as stored, in order (what Warden promises is the order per actor). */
async function eventsPerActor(prefix: string): Promise<Map<string, unknown[]>> {
  const perActor = new Map<string, unknown[]>();
  for (const m of await nats.client.stored(`${prefix}.evt.>`, `${prefix.toUpperCase()}_EVENTS`)) {
    const [, , kind, key] = m.subject.split('.');
    const actor = `${actorOfKind.get(kind!) ?? kind}:${key}`;
    perActor.set(actor, [...(perActor.get(actor) ?? []), [kind, m.data]]);
  }
  return perActor;
}

/** The metrics' counts (from the store's copy, for actors not resident) agree with the full listing. */
function expectCountsAsListed(w: NatsWarden): void {
  const counts = new Map<string, number>();
  for (const m of w.warden.status().models) counts.set(m.state, (counts.get(m.state) ?? 0) + 1);
  const { models, pausedConfigs } = w.warden.stateCounts();
  expect(new Map([...models].filter(([, n]) => n !== 0))).toEqual(counts);
  expect(pausedConfigs).toBe(w.warden.status().training.filter((c) => c.status === 'paused').length);
}

/** Runs the steps; every answer (or error code) is recorded, and the counts checked after each step. */
async function run(w: NatsWarden, clock: ManualClock, steps: readonly Step[]): Promise<unknown[]> {
  const answers: unknown[] = [];
  const answer = async (work: () => Promise<unknown>) => {
    try {
      answers.push(await work());
    } catch (error) {
      answers.push({ error: (error as { code?: string }).code ?? String(error) });
    }
    await w.settled();
  };
  for (const s of steps) {
    const model = `m${'model' in s ? s.model : 0}`;
    switch (s.kind) {
      case 'promote':
        await answer(() => w.warden.promote({ model_id: model, version: `v${s.version}`, elo: s.elo }));
        break;
      case 'evaluate':
        await answer(() => w.warden.evaluate({ model_id: model, current_elo: s.elo, games_played: s.games }));
        break;
      case 'approve':
      case 'reject':
        await answer(() => w.warden[s.kind](model, { by: 'prop' }));
        break;
      case 'resume':
        await answer(() => w.warden.resume(model, { by: 'prop' }));
        break;
      case 'advance':
        clock.advance(s.ms);
        // What the timers started (a rollback, its commit) ends before the next step.
        for (let i = 0; i < 3; i++) {
          await w.settled();
          clock.advance(0);
        }
        await w.settled();
        break;
    }
    expectCountsAsListed(w);
  }
  return answers;
}

let runs = 0;

describe('passivation in NATS mode is invisible', () => {
  it('an actor passivated and revived gives the same answers, states and events as one never passivated', async () => {
    let passivatedRuns = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 10, maxLength: 30 }), async (steps) => {
        const n = runs++;
        const results = [];
        for (const passivate of [null, IDLE_S]) {
          const prefix = `pprop${n}${passivate === null ? 'r' : 'p'}`;
          const clock = new ManualClock();
          await using w = await startNatsWarden(nats.server.url, {
            config: { ...CONFIG, passivateAfterSeconds: passivate, nats: { prefix } },
            clock,
          });
          const answers = await run(w, clock, steps);
          results.push({
            answers,
            status: w.warden.status(),
            events: await eventsPerActor(prefix),
            passivated: w.warden.residency().passivated,
          });
        }
        const [resident, passivating] = results;
        expect(resident!.passivated).toBe(0);
        if (passivating!.passivated > 0) passivatedRuns++;
        expect(passivating!.answers).toEqual(resident!.answers);
        expect(passivating!.status).toEqual(resident!.status);
        expect(passivating!.events).toEqual(resident!.events);
      }),
      { numRuns: 40 },
    );
    // The property means something only if actors were passivated (and revived) in most runs.
    expect(passivatedRuns).toBeGreaterThan(5);
  }, 240_000);
});
