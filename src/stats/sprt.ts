/**
 * Wald's sequential probability ratio test on a log-likelihood ratio. With error rates α (accepting H1
 * when H0 holds) and β (accepting H0 when H1 holds), Wald's bounds are
 * lower = ln(β/(1−α)) and upper = ln((1−β)/α); α = β = 0.05 gives ±2.944 (fishtest stat_util.SPRT).
 */
export interface SprtBounds {
  readonly lower: number;
  readonly upper: number;
}

export type SprtDecision = 'accept_h0' | 'accept_h1' | 'continue';

function assertProbability(value: number, what: string): void {
  if (!(typeof value === 'number' && value > 0 && value < 1)) {
    throw new RangeError(
      `${what}: expected a probability strictly between 0 and 1, received ${String(value)}`,
    );
  }
}

export function sprtBounds(alpha: number, beta: number): { lower: number; upper: number } {
  assertProbability(alpha, 'alpha');
  assertProbability(beta, 'beta');
  if (alpha + beta >= 1) {
    // Otherwise the bounds cross zero and the test decides before it sees a game.
    throw new RangeError(`alpha + beta: expected less than 1, received ${alpha} + ${beta} = ${alpha + beta}`);
  }
  return { lower: Math.log(beta / (1 - alpha)), upper: Math.log((1 - beta) / alpha) };
}

/** Crossing (or touching) a bound decides; fishtest uses strict inequalities, the difference is measure zero. */
export function sprtDecision(llr: number, bounds: { lower: number; upper: number }): SprtDecision {
  if (Number.isNaN(llr)) throw new RangeError('llr: expected a number, received NaN');
  if (llr >= bounds.upper) return 'accept_h1';
  if (llr <= bounds.lower) return 'accept_h0';
  return 'continue';
}
