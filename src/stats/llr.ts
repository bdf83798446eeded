import { scoreFromElo } from './elo.ts';
import { findRoot } from './roots.ts';
import { empiricalDistribution, isPentanomial, moments, type GameResults } from './results.ts';

/**
 * The generalized log-likelihood ratio of fishtest's LLRcalc (M. Van den Bergh, "Support of the MLE of a
 * multinomial", Proposition 1.1, and "Normalized Elo, practical", §4.1): for each hypothesis, the
 * multinomial distribution closest to the observed one (maximum likelihood) subject to the hypothesis'
 * constraint; LLR = n·Σ p̂ᵢ·ln(p₁ᵢ/p₀ᵢ), with n the number of samples (games, or game pairs).
 */

/** Normalized Elo per unit of t-value, 800/ln 10 ≈ 347.4: nElo = t·800/ln 10 with t = (μ − ½)/σ per game. */
export const NELO_PER_T = 800 / Math.LN10;

/**
 * Solves the secular equation Σ p̂ᵢ·φᵢ/(1 + θ·φᵢ) = 0 and returns the denominators dᵢ = 1 + θ·φᵢ at its
 * root (the tilted distribution is p̂ᵢ/dᵢ). The left side decreases strictly in θ and runs from +∞ to −∞
 * between its poles −1/max φ and −1/min φ, so a root exists and is unique as long as the φᵢ take both
 * signs (the constraint is reachable).
 *
 * With lopsided counts (5,000,000 wins and no loss) the root lies closer to a pole than any fixed margin
 * (1e-9 earlier, which made the solve throw), so θ is never stored as such: the root is sought as the
 * distance from the nearer pole, on a log scale, and every dᵢ is computed from that distance without
 * cancellation. The distance can be as small as 1e-300, far below what any schema-valid count needs.
 */
export function secularDenominators(probabilities: readonly number[], phi: readonly number[]): number[] {
  let iMax = 0;
  let iMin = 0;
  for (let i = 1; i < phi.length; i += 1) {
    if ((phi[i] as number) > (phi[iMax] as number)) iMax = i;
    if ((phi[i] as number) < (phi[iMin] as number)) iMin = i;
  }
  const largest = phi[iMax] as number;
  const smallest = phi[iMin] as number;
  if (!(smallest < 0 && largest > 0)) {
    throw new RangeError(
      `LLR: expected the hypothesis to be reachable (deviations of both signs), received deviations in [${smallest}, ${largest}]`,
    );
  }
  // θ runs over (−1/largest, −1/smallest), an interval of this width.
  const width = 1 / largest - 1 / smallest;
  const n = phi.length;
  const weights = phi.map((f, i) => (probabilities[i] as number) * f);
  // At distance t above the lower pole dᵢ = (largest − φᵢ)/largest + t·φᵢ (exactly t·largest at iMax);
  // at distance t below the upper pole dᵢ = (φᵢ − smallest)/|smallest| − t·φᵢ (exactly t·|smallest| at
  // iMin). Either way dᵢ = cᵢ + t·kᵢ, with no cancellation near the pole.
  const lowerC = phi.map((f) => (largest - f) / largest);
  const upperC = phi.map((f) => (f - smallest) / -smallest);
  const upperK = phi.map((f) => -f);
  const secular = (c: readonly number[], k: readonly number[], t: number): number => {
    let sum = 0;
    for (let i = 0; i < n; i += 1) sum += (weights[i] as number) / ((c[i] as number) + t * (k[i] as number));
    return sum;
  };
  const denominators = (c: readonly number[], k: readonly number[], t: number): number[] =>
    c.map((ci, i) => ci + t * (k[i] as number));
  const half = width / 2;
  const atMiddle = secular(lowerC, phi, half);
  if (atMiddle === 0) return denominators(lowerC, phi, half);
  // The left side decreases in θ: positive in the middle puts the root in the upper half, where it
  // increases in the distance t from the upper pole; in the lower half it decreases in t.
  const [c, k, sign, pole] = atMiddle > 0 ? [upperC, upperK, -1, iMin] : [lowerC, phi, 1, iMax];
  // g decreases in x = ln t on both sides: +∞ at the pole, sign·atMiddle < 0 in the middle.
  const g = (logDistance: number): number => sign * secular(c, k, Math.exp(logDistance));
  const top = Math.log(half);
  const bottom = top - 690;
  // Where the pole's term w/(k·t) balances the others taken at the pole: usually within a factor of a few
  // of the root, so a short geometric search brackets it and Brent needs few steps.
  let rest = 0;
  for (let i = 0; i < n; i += 1) if (i !== pole) rest += (weights[i] as number) / (c[i] as number);
  const estimate = -(weights[pole] as number) / ((k[pole] as number) * rest);
  let start = estimate > 0 ? Math.log(estimate) : (top + bottom) / 2;
  start = Math.min(Math.max(start, bottom), top);
  let lower = bottom;
  let upper = top;
  if (g(start) > 0) {
    lower = start;
    for (let step = 1; lower + step < top; step *= 2) {
      if (g(lower + step) < 0) {
        upper = lower + step;
        break;
      }
      lower += step;
    }
  } else {
    upper = start;
    for (let step = 1; upper - step > bottom; step *= 2) {
      if (g(upper - step) > 0) {
        lower = upper - step;
        break;
      }
      upper -= step;
    }
  }
  const logDistance = findRoot(g, lower, upper, { xTolerance: 1e-14 });
  return denominators(c, k, Math.exp(logDistance));
}

/** pᵢ = p̂ᵢ / dᵢ: the stationary point of the Lagrangian for a constraint with gradient φ. */
function tilt(probabilities: readonly number[], denominators: readonly number[]): number[] {
  return probabilities.map((p, i) => p / (denominators[i] as number));
}

/**
 * The maximum-likelihood distribution with expected score `score`: the constraint Σ pᵢaᵢ = s is linear,
 * its gradient is φᵢ = aᵢ − s, and one secular solve gives the exact answer.
 */
export function mleWithExpectedScore(
  values: readonly number[],
  probabilities: readonly number[],
  score: number,
): number[] {
  const phi = values.map((a) => a - score);
  return tilt(probabilities, secularDenominators(probabilities, phi));
}

/**
 * Fishtest stops after 10 rounds or a 1e-9 move; iterating to 1e-13 lands on the same LLR to 1e-11 on
 * the reference vectors and is safer on lopsided results, where the iteration converges more slowly.
 */
const T_VALUE_ROUNDS = 100;
const T_VALUE_TOLERANCE = 1e-13;
/** The constraint must hold this well at the end (fishtest asserts 1e-5). */
const T_VALUE_CHECK = 1e-6;
const MAX_CONTINUATION_STEPS = 256;

/**
 * The maximum-likelihood distribution with t-value (μ − ref)/σ = t. The constraint g(p) = μ − ref − t·σ
 * is not linear, so iterate (fishtest MLE_t_value): linearise at the current p, where the gradient of g,
 * shifted so that Σ pᵢφᵢ = g(p), is φᵢ = aᵢ − ref − t·(σ² + (aᵢ − μ)²)/(2σ), then tilt p̂ by it, starting
 * from the uniform distribution. The fixed point satisfies both the constraint and stationarity.
 *
 * For a large |t| (hundreds of nElo) the first linearisation at the uniform distribution can fall outside
 * the reachable range, where fishtest stops with an assertion. Then t is approached in steps, each solve
 * starting from the previous one; the first attempt is a single step, fishtest's path.
 */
export function mleWithTValue(
  values: readonly number[],
  probabilities: readonly number[],
  reference: number,
  t: number,
): number[] {
  for (let steps = 1; steps <= MAX_CONTINUATION_STEPS; steps *= 2) {
    let current: number[] | null = values.map(() => 1 / values.length);
    for (let step = 1; step <= steps && current !== null; step += 1) {
      current = iterateTValue(values, probabilities, reference, (t * step) / steps, current);
    }
    if (current !== null) return current;
  }
  throw new RangeError(
    `LLR: expected a reachable t-value, received t = ${t} (normalized Elo too far from the data)`,
  );
}

/** The fixed-point iteration from `start`; null when a linearisation is unreachable or it does not converge. */
function iterateTValue(
  values: readonly number[],
  probabilities: readonly number[],
  reference: number,
  t: number,
  start: number[],
): number[] | null {
  let current = start;
  for (let round = 0; round < T_VALUE_ROUNDS; round += 1) {
    const { mean, variance } = moments(values, current);
    const sigma = Math.sqrt(variance);
    const phi = values.map((a) => a - reference - (t * (variance + (a - mean) ** 2)) / (2 * sigma));
    if (!(Math.min(...phi) < 0 && Math.max(...phi) > 0)) return null;
    const next = tilt(probabilities, secularDenominators(probabilities, phi));
    const moved = Math.max(...next.map((p, i) => Math.abs(p - (current[i] as number))));
    current = next;
    if (moved < T_VALUE_TOLERANCE) break;
  }
  const { mean, variance } = moments(values, current);
  return Math.abs((mean - reference) / Math.sqrt(variance) - t) < T_VALUE_CHECK ? current : null;
}

/** n·Σ p̂ᵢ·(ln p₁ᵢ − ln p₀ᵢ). */
function logLikelihoodRatio(
  samples: number,
  observed: readonly number[],
  h0: readonly number[],
  h1: readonly number[],
): number {
  let sum = 0;
  for (let i = 0; i < observed.length; i += 1) {
    sum += (observed[i] as number) * (Math.log(h1[i] as number) - Math.log(h0[i] as number));
  }
  return samples * sum;
}

function assertFinite(value: number, what: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new RangeError(`${what}: expected a finite number, received ${String(value)}`);
  }
}

/**
 * LLR of H1: Elo = elo1 against H0: Elo = elo0 in logistic Elo (fishtest LLR_logistic). Each hypothesis
 * fixes the expected per-game score at E(elo); for pentanomial the pair's mean score has the same
 * expectation, so the same constraint applies per pair.
 */
export function llrLogistic(elo0: number, elo1: number, results: GameResults): number {
  assertFinite(elo0, 'elo0');
  assertFinite(elo1, 'elo1');
  const { values, probabilities, samples } = empiricalDistribution(results);
  const d0 = secularDenominators(
    probabilities,
    values.map((a) => a - scoreFromElo(elo0)),
  );
  const d1 = secularDenominators(
    probabilities,
    values.map((a) => a - scoreFromElo(elo1)),
  );
  // pₖᵢ = p̂ᵢ/dₖᵢ, so ln p₁ᵢ − ln p₀ᵢ = ln d₀ᵢ − ln d₁ᵢ: no probability is formed, none can underflow.
  let sum = 0;
  for (let i = 0; i < probabilities.length; i += 1) {
    sum += (probabilities[i] as number) * (Math.log(d0[i] as number) - Math.log(d1[i] as number));
  }
  return samples * sum;
}

/**
 * LLR of H1: nElo = nelo1 against H0: nElo = nelo0 in normalized Elo (fishtest LLR_normalized). nElo is
 * a per-game t-value, t = nElo/(800/ln 10); the pair's mean has √2 less spread than one game when the
 * games are independent, so for pentanomial the per-pair t is √2·t.
 */
export function llrNormalized(nelo0: number, nelo1: number, results: GameResults): number {
  assertFinite(nelo0, 'nelo0');
  assertFinite(nelo1, 'nelo1');
  const { values, probabilities, samples } = empiricalDistribution(results);
  const perSample = isPentanomial(results) ? Math.SQRT2 : 1;
  const t0 = (nelo0 / NELO_PER_T) * perSample;
  const t1 = (nelo1 / NELO_PER_T) * perSample;
  const h0 = mleWithTValue(values, probabilities, 0.5, t0);
  const h1 = mleWithTValue(values, probabilities, 0.5, t1);
  return logLikelihoodRatio(samples, probabilities, h0, h1);
}
