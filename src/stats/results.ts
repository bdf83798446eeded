/**
 * Game results in fishtest's conventions. Trinomial counts are [losses, draws, wins] of single games;
 * pentanomial counts are of game pairs (same opening, colours swapped) by the pair's total score:
 * [LL, LD+DL, LW+DD+WL, DW+WD, WW]. Pairing cancels the opening's bias, so the pentanomial variance is
 * the honest one when games are paired.
 */
export type Trinomial = readonly [losses: number, draws: number, wins: number];
export type Pentanomial = readonly [ll: number, ldDl: number, lwDdWl: number, dwWd: number, ww: number];
/** Distinguished by length: 3 or 5. */
export type GameResults = Trinomial | Pentanomial;

const TRINOMIAL_NAMES = ['losses', 'draws', 'wins'] as const;
const PENTANOMIAL_NAMES = ['LL', 'LD+DL', 'LW+DD+WL', 'DW+WD', 'WW'] as const;

/** Fishtest's regularisation (LLRcalc.regularize): a zero count becomes 1e-3, so no cell has probability 0. */
export const ZERO_COUNT_PRIOR = 1e-3;

function describe(value: unknown): string {
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value === 'string' ? `"${value}"` : typeof value;
}

export function isPentanomial(results: GameResults): results is Pentanomial {
  return results.length === 5;
}

/**
 * Throws a RangeError naming what was expected and what was received unless `results` is 3 or 5
 * non-negative integer counts with at least one game.
 */
export function assertGameResults(results: unknown, what = 'results'): asserts results is GameResults {
  if (!Array.isArray(results) || (results.length !== 3 && results.length !== 5)) {
    throw new RangeError(
      `${what}: expected 3 counts [losses, draws, wins] or 5 pentanomial counts [LL, LD+DL, LW+DD+WL, DW+WD, WW], received ${describe(results)}`,
    );
  }
  const names = results.length === 3 ? TRINOMIAL_NAMES : PENTANOMIAL_NAMES;
  results.forEach((count: unknown, i) => {
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) {
      throw new RangeError(
        `${what}[${i}] (${names[i]}): expected a non-negative integer count, received ${describe(count)}`,
      );
    }
  });
  if ((results as number[]).every((count) => count === 0)) {
    throw new RangeError(
      `${what}: expected at least one game, received all-zero counts [${results.join(', ')}]`,
    );
  }
}

/** A probability distribution on scores: values a_i (per-game score) with probabilities p_i. */
export interface ScoreDistribution {
  readonly values: readonly number[];
  readonly probabilities: readonly number[];
  /** The number of samples (games for trinomial, game pairs for pentanomial), after regularisation. */
  readonly samples: number;
}

/**
 * The empirical distribution of the per-game score of one sample: a trinomial sample is one game
 * (0, ½, 1); a pentanomial sample is one pair, scored as the mean of its two games (0, ¼, ½, ¾, 1).
 * Zero counts are regularised as fishtest does, which is what makes its reference values reproducible.
 */
export function empiricalDistribution(results: GameResults): ScoreDistribution {
  assertGameResults(results);
  const counts = results.map((count) => (count === 0 ? ZERO_COUNT_PRIOR : count));
  const samples = counts.reduce((sum, count) => sum + count, 0);
  const last = counts.length - 1;
  return {
    values: counts.map((_, i) => i / last),
    probabilities: counts.map((count) => count / samples),
    samples,
  };
}

/** Mean and variance of a distribution. */
export function moments(
  values: readonly number[],
  probabilities: readonly number[],
): { mean: number; variance: number } {
  let mean = 0;
  for (let i = 0; i < values.length; i += 1) mean += (probabilities[i] as number) * (values[i] as number);
  let variance = 0;
  for (let i = 0; i < values.length; i += 1) {
    const deviation = (values[i] as number) - mean;
    variance += (probabilities[i] as number) * deviation * deviation;
  }
  return { mean, variance };
}

/** The number of games the counts stand for (a pentanomial count is a pair: two games). */
export function gamesOf(results: GameResults): number {
  const samples = results.reduce((sum, count) => sum + count, 0);
  return isPentanomial(results) ? 2 * samples : samples;
}
