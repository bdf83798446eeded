/**
 * Random runs for the "passivation is invisible" properties (embedded and NATS mode): the steps, how each
 * is answered, and the checks both make of a run.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { OUTPUT_EVENTS } from '../../src/domain/events.ts';
import type { Warden } from '../../src/warden.ts';

/** One step of a random run: an input, a command, or time passing (which passivates idle actors). */
export type Step =
  | { kind: 'promote'; model: number; version: number; elo: number }
  | { kind: 'evaluate'; model: number; elo: number; games: number }
  | { kind: 'approve' | 'reject' | 'resume'; model: number }
  | { kind: 'advance'; ms: number };

// Elo drops that land on every severity (none, minor, moderate, severe: held for approval, critical), and
// pauses both short (nothing is passivated) and long (idle actors are, and deadlines fall due).
export const step: fc.Arbitrary<Step> = fc.oneof(
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
    ms: fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 10_000, max: 400_000 })),
  }),
);

/** Warden's answer to a step that is not time passing: what it returned, or the error's code. */
export async function answer(warden: Warden, s: Exclude<Step, { kind: 'advance' }>): Promise<unknown> {
  const model = `m${s.model}`;
  try {
    switch (s.kind) {
      case 'promote':
        return await warden.promote({ model_id: model, version: `v${s.version}`, elo: s.elo });
      case 'evaluate':
        return await warden.evaluate({ model_id: model, current_elo: s.elo, games_played: s.games });
      case 'approve':
      case 'reject':
        return await warden[s.kind](model, { by: 'prop' });
      case 'resume':
        return await warden.resume(model, { by: 'prop' });
    }
  } catch (error) {
    return { error: (error as { code?: string }).code ?? String(error) };
  }
}

/** Which actor publishes an event of each kind: the training config (keyed by config) or the model. */
export const actorOfKind = new Map<string, string>(
  Object.values(OUTPUT_EVENTS).map((spec) => [
    spec.kind,
    spec.keyField === 'config_key' ? 'training' : 'model',
  ]),
);

/** The metrics' counts (kept from commits, for actors not resident) agree with the full listing. */
export function expectCountsAsListed(warden: Warden): void {
  const counts = new Map<string, number>();
  for (const m of warden.status().models) counts.set(m.state, (counts.get(m.state) ?? 0) + 1);
  const { models, pausedConfigs } = warden.stateCounts();
  expect(new Map([...models].filter(([, n]) => n !== 0))).toEqual(counts);
  expect(pausedConfigs).toBe(warden.status().training.filter((c) => c.status === 'paused').length);
}
