import type { ManualClock } from '../../src/actors/manual-clock.ts';

/** Scripted histories for the policy lab's tests, as JSON Lines. */

export const T0 = Date.UTC(2026, 2, 1) / 1000;
const MIN = 60;

export interface Line {
  kind: 'promotion' | 'evaluation';
  timestamp: number | string;
  [field: string]: unknown;
}

export const promotion = (t: number, model: string, version: string, elo = 1500): Line => ({
  kind: 'promotion',
  model_id: model,
  version,
  elo,
  timestamp: t,
});

export const evaluation = (t: number, model: string, version: string, elo: number, id?: string): Line => ({
  kind: 'evaluation',
  ...(id ? { event_id: id } : {}),
  model_id: model,
  version,
  current_elo: elo,
  baseline_elo: 1500,
  games_played: 400,
  timestamp: t,
});

/**
 * Known good and bad versions of one model, evaluated every 10 minutes (threshold mode):
 * - v1 good (within 4 Elo of its baseline);
 * - v2 bad: 60 Elo below (severe by the default ladder: rolled back at once);
 * - v3 good but noisy: 12 to 16 Elo below (under the default minor step of 20: never a regression);
 * - v4 bad: 40 Elo below (moderate, and beyond the 30 Elo moderate rollback drop).
 * Each version gets six evaluations; new versions come an hour after the last evaluation.
 */
export function knownVersions(model = 'hex8'): Line[] {
  const lines: Line[] = [];
  let t = T0;
  const step = () => (t += 10 * MIN);
  lines.push(promotion(t, model, 'v1'));
  for (const d of [2, -3, 4, -1, 0, 3]) lines.push(evaluation(step(), model, 'v1', 1500 - d));
  t += 60 * MIN;
  lines.push(promotion(t, model, 'v2'));
  for (let i = 0; i < 6; i++) lines.push(evaluation(step(), model, 'v2', 1440 - i));
  t += 60 * MIN;
  lines.push(promotion(t, model, 'v3'));
  for (const d of [12, 16, 13, 15, 14, 12]) lines.push(evaluation(step(), model, 'v3', 1500 - d));
  t += 60 * MIN;
  lines.push(promotion(t, model, 'v4'));
  for (let i = 0; i < 6; i++) lines.push(evaluation(step(), model, 'v4', 1460 - i));
  return lines;
}

export const toJsonLines = (lines: ReadonlyArray<Line | string>): string =>
  lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n');

/** Stricter: a 10 Elo drop is already a regression, and two in a row force action. */
export const STRICTER = {
  detection: {
    mode: 'threshold',
    eloDrop: { minor: 10, moderate: 25, severe: 50, critical: 75 },
    escalateAt: 2,
    forceActionAt: 2,
  },
} as const;

/** Looser: only a drop of 90 Elo or more is worth a rollback. */
export const LOOSER = {
  detection: {
    mode: 'threshold',
    eloDrop: { minor: 45, moderate: 70, severe: 90, critical: 120 },
    escalateAt: 10,
    forceActionAt: 10,
    moderateRollbackEloDrop: 100,
  },
} as const;

export const LIVE = { detection: { mode: 'threshold' } } as const;

/** Feeds the scripted inputs at their times, one at a time, as producers would. */
export async function drive(
  send: (kind: Line['kind'], payload: Record<string, unknown>) => Promise<unknown>,
  clock: ManualClock,
  lines: Line[],
  settle: () => Promise<void>,
): Promise<void> {
  for (const line of lines) {
    const { kind, timestamp, ...payload } = line;
    clock.advance(Math.max((timestamp as number) * 1000 - clock.now(), 0));
    await settle();
    await send(kind, payload);
    await settle();
  }
}

/** Two models with the same known versions, their inputs interleaved in time (go9 a minute after hex8). */
export function interleaved(): Line[] {
  const go = knownVersions('go9').map((l) => ({ ...l, timestamp: (l.timestamp as number) + 60 }));
  return [...knownVersions('hex8'), ...go].sort((a, b) => (a.timestamp as number) - (b.timestamp as number));
}
