import { normalCdf, normalQuantile } from './normal.ts';
import { empiricalDistribution, moments, type GameResults } from './results.ts';

/** Logistic Elo: the expected score at a rating difference of `elo`, E(D) = 1 / (1 + 10^(−D/400)). */
export function scoreFromElo(elo: number): number {
  return 1 / (1 + 10 ** (-elo / 400));
}

const SCORE_CLAMP = 1e-3;

/**
 * The inverse, D(s) = −400·log10(1/s − 1). The score is clamped to [0.001, 0.999] (±1200 Elo) as in
 * fishtest's stat_util.elo, so a perfect or a zero score gives a large finite rating, never ±Infinity.
 */
export function eloFromScore(score: number): number {
  const clamped = Math.min(Math.max(score, SCORE_CLAMP), 1 - SCORE_CLAMP);
  return -400 * Math.log10(1 / clamped - 1);
}

export interface EloEstimate {
  /** Logistic Elo of the score (negative: the first player is worse). */
  readonly elo: number;
  /** Half-width of the interval at `confidence` (named after fishtest's 95% default). */
  readonly elo95: number;
  /** Ends of the two-sided interval at `confidence` (not symmetric around `elo`: the map is non-linear). */
  readonly lower: number;
  readonly upper: number;
  /** Likelihood of superiority: P(true Elo > 0). */
  readonly los: number;
  readonly confidence: number;
}

export function assertConfidence(confidence: number, what = 'confidence'): void {
  if (!(typeof confidence === 'number' && confidence > 0 && confidence < 1)) {
    throw new RangeError(
      `${what}: expected a number strictly between 0 and 1, received ${String(confidence)}`,
    );
  }
}

/** Mean per-game score and its standard error, from the per-sample (game or pair) distribution. */
export function scoreAndStandardError(results: GameResults): { score: number; standardError: number } {
  const { values, probabilities, samples } = empiricalDistribution(results);
  const { mean, variance } = moments(values, probabilities);
  return { score: mean, standardError: Math.sqrt(variance / samples) };
}

/**
 * Logistic Elo with a normal-approximation interval on the score, mapped through D(s) (fishtest
 * stat_util.get_elo): μ̂ ± z·σ̂/√n, where a sample is a game (trinomial) or a pair scored as the mean of
 * its games (pentanomial), so the pair's variance carries the opening correlation.
 * LOS = Φ((μ̂ − ½)/(σ̂/√n)).
 */
export function eloEstimate(results: GameResults, confidence = 0.95): EloEstimate {
  assertConfidence(confidence);
  const { score, standardError } = scoreAndStandardError(results);
  const z = normalQuantile((1 + confidence) / 2);
  const lower = eloFromScore(score - z * standardError);
  const upper = eloFromScore(score + z * standardError);
  return {
    elo: eloFromScore(score),
    elo95: (upper - lower) / 2,
    lower,
    upper,
    los: normalCdf((score - 0.5) / standardError),
    confidence,
  };
}
