import { eloFromScore, scoreFromElo } from './elo.ts';
import { secularDenominators } from './llr.ts';
import { normalQuantile } from './normal.ts';
import { empiricalDistribution, type GameResults, type ScoreDistribution } from './results.ts';
import { findRoot } from './roots.ts';

/**
 * Score-type (Wilson-type) confidence bounds on the mean score, mapped to logistic Elo.
 *
 * The normal approximation μ̂ ± z·σ̂/√n takes the spread σ̂ from the observed results, so it collapses
 * where the spread does: 0 wins, 0 draws, 50 losses has σ̂ ≈ 0, and its "bound" sits at the −1200 Elo
 * clamp (a drop of 1139 Elo "established" from 50 games). The score interval instead asks, for each
 * candidate mean μ, whether the observed mean is plausible under the distribution that has mean μ and is
 * otherwise closest to the data (the same constrained maximum-likelihood distribution the LLR uses), with
 * that distribution's own spread σ(μ): the bound is the μ where (μ − μ̂)·√n = z·σ(μ). For win/loss data
 * this is exactly Wilson's interval (σ(μ)² = μ(1 − μ)); 0-0-50 at 95% one-sided gives 0.051, −503 Elo,
 * beside Clopper–Pearson's exact 0.058, −483 Elo. With draws σ(μ) follows the draw rate, and with
 * pentanomial pairs the pairs' spread. For large counts it agrees with the normal approximation.
 */

/** The clamp of eloFromScore, ±1200 Elo: beyond it a bound says nothing an operator could use. */
const SCORE_MIN = 1e-3;
const SCORE_MAX = 1 - SCORE_MIN;

/** σ(μ): the spread of one sample under the closest distribution with mean μ, 0 < μ < 1. */
function spreadAt(distribution: ScoreDistribution, mu: number): number {
  const { values, probabilities } = distribution;
  const d = secularDenominators(
    probabilities,
    values.map((a) => a - mu),
  );
  let variance = 0;
  for (let i = 0; i < values.length; i += 1) {
    const deviation = (values[i] as number) - mu;
    variance += ((probabilities[i] as number) / (d[i] as number)) * deviation * deviation;
  }
  return Math.sqrt(variance);
}

function meanOf(distribution: ScoreDistribution): number {
  let mean = 0;
  distribution.values.forEach((a, i) => (mean += a * (distribution.probabilities[i] as number)));
  return mean;
}

/** Positive once μ lies beyond the bound on its side: the observed mean is then implausible under μ. */
function excessAt(
  distribution: ScoreDistribution,
  observed: number,
  z: number,
  side: 'upper' | 'lower',
  mu: number,
): number {
  const root = Math.sqrt(distribution.samples);
  return (side === 'upper' ? mu - observed : observed - mu) * root - z * spreadAt(distribution, mu);
}

/** The one-sided bound on the mean score at `z` (z > 0), above the observed mean or below it. */
function scoreBound(distribution: ScoreDistribution, z: number, side: 'upper' | 'lower'): number {
  const observed = meanOf(distribution);
  const excess = (mu: number): number => excessAt(distribution, observed, z, side, mu);
  const limit = side === 'upper' ? SCORE_MAX : SCORE_MIN;
  if (side === 'upper' ? observed >= SCORE_MAX : observed <= SCORE_MIN) return limit;
  if (excess(limit) <= 0) return limit;
  if (excess(observed) >= 0) return observed; // z = 0 (confidence ½ one-sided), up to rounding
  return side === 'upper'
    ? findRoot(excess, observed, limit, { xTolerance: 1e-12 })
    : findRoot(excess, limit, observed, { xTolerance: 1e-12 });
}

function assertLevel(confidence: number): void {
  if (!(typeof confidence === 'number' && confidence > 0 && confidence < 1)) {
    throw new RangeError(
      `confidence: expected a number strictly between 0 and 1, received ${String(confidence)}`,
    );
  }
}

/**
 * The one-sided upper confidence bound of the Elo: we are `confidence` sure the true Elo is at most
 * this. Its negation is the drop we are `confidence` sure of. Finite for any counts (±1200 at most).
 */
export function eloUpperBound(results: GameResults, confidence: number): number {
  assertLevel(confidence);
  return eloFromScore(scoreBound(empiricalDistribution(results), normalQuantile(confidence), 'upper'));
}

/** The two-sided score interval of the Elo at `confidence`. Finite for any counts (±1200 at most). */
export function eloScoreInterval(results: GameResults, confidence: number): { lower: number; upper: number } {
  assertLevel(confidence);
  const distribution = empiricalDistribution(results);
  const z = normalQuantile((1 + confidence) / 2);
  return {
    lower: eloFromScore(scoreBound(distribution, z, 'lower')),
    upper: eloFromScore(scoreBound(distribution, z, 'upper')),
  };
}

/**
 * Whether the upper bound of the Elo at `confidence` is at most −drop (a drop of `drop` Elo or more is
 * established), from one score test at the drop instead of solving for the bound. `margin` (in units of
 * the test statistic) widens the answer: a negative margin says yes also just short of the step, so a
 * caller that then solves for the bound grades the boundary case exactly.
 */
export function eloDropEstablished(
  results: GameResults,
  confidence: number,
  drop: number,
  margin = 0,
): boolean {
  assertLevel(confidence);
  const mu = scoreFromElo(-drop);
  if (!(mu > SCORE_MIN)) return false; // beyond the clamp: the bound never gets there
  const distribution = empiricalDistribution(results);
  const observed = meanOf(distribution);
  if (!(mu > observed)) return mu === observed && margin < 0;
  return excessAt(distribution, observed, normalQuantile(confidence), 'upper', mu) >= margin;
}
