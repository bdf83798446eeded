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
import { startNatsWarden, type NatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { actorOfKind, answer, expectCountsAsListed, step, type Step } from '../support/passivation-steps.ts';

const nats = useSharedNats();

const IDLE_S = 10;
const CONFIG: ConfigInput = {
  detection: { mode: 'threshold' },
  approval: { requireForSevere: true, timeoutSeconds: 60, onTimeout: 'rollback' },
  cooldownSeconds: 120,
  training: { autoResumeSeconds: 300 },
};

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

/** Runs the steps; every answer (or error code) is recorded, and the counts checked after each step. */
async function run(w: NatsWarden, clock: ManualClock, steps: readonly Step[]): Promise<unknown[]> {
  const answers: unknown[] = [];
  for (const s of steps) {
    if (s.kind === 'advance') {
      clock.advance(s.ms);
      // What the timers started (a rollback, its commit) ends before the next step.
      for (let i = 0; i < 3; i++) {
        await w.settled();
        clock.advance(0);
      }
    } else answers.push(await answer(w.warden, s));
    await w.settled();
    expectCountsAsListed(w.warden);
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
