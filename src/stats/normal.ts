/**
 * The standard normal distribution: CDF and quantile, written here so the statistics need no dependency.
 * Both are accurate to a few units in the last place over the range the detector and the calculator use,
 * including the deep tails (a likelihood of superiority of 1e-43 must come out as 1e-43, not 0).
 */

const SQRT_PI = Math.sqrt(Math.PI);
const SQRT_2 = Math.SQRT2;
const SQRT_2PI = Math.sqrt(2 * Math.PI);

/** Below this argument erfc is computed as 1 - erf (series); above, by its continued fraction. */
const SERIES_LIMIT = 2.5;
const MAX_TERMS = 1000;

/**
 * erf(x) for 0 <= x <= SERIES_LIMIT from the all-positive series
 * erf(x) = (2/√π)·e^(−x²)·Σ 2ⁿ·x^(2n+1) / (1·3·5···(2n+1)) (Abramowitz & Stegun 7.1.6).
 * No alternating signs, so no cancellation.
 */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 0; n < MAX_TERMS; n += 1) {
    term *= (2 * x2) / (2 * n + 3);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return (2 / SQRT_PI) * Math.exp(-x2) * sum;
}

/**
 * erfc(x) for x >= SERIES_LIMIT from the continued fraction (A&S 7.1.14)
 * erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))),
 * evaluated with the modified Lentz method; relative accuracy holds far into the tail.
 */
function erfcContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < MAX_TERMS; k += 1) {
    const a = k / 2;
    d = x + a * d;
    d = d === 0 ? tiny : d;
    c = x + a / c;
    c = c === 0 ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / SQRT_PI / f;
}

/** Complementary error function, with relative accuracy in the upper tail. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < SERIES_LIMIT) return 1 - erfSeries(x);
  if (x > 27) return 0; // e^(-729) underflows a double
  return erfcContinuedFraction(x);
}

/** Φ(x) = P(Z <= x). Uses erfc on the side that keeps relative accuracy in the tail. */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  return x < 0 ? erfc(-x / SQRT_2) / 2 : 1 - erfc(x / SQRT_2) / 2;
}

/** φ(x), the density. */
export function normalPdf(x: number): number {
  return Math.exp((-x * x) / 2) / SQRT_2PI;
}

/**
 * Φ⁻¹(p). A starting point from A&S 26.2.23 (absolute error < 4.5e-4), then Halley steps on
 * Φ(x) − p, which converge cubically: two or three steps reach double precision. The lower tail is
 * solved directly and the upper tail by symmetry, so p = 1e-300 works as well as p = 0.3.
 */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1))
    throw new RangeError(`normalQuantile: expected a probability in [0, 1], received ${p}`);
  if (p === 0) return Number.NEGATIVE_INFINITY;
  if (p === 1) return Number.POSITIVE_INFINITY;
  if (p > 0.5) return -lowerTailQuantile(1 - p);
  return lowerTailQuantile(p);
}

function lowerTailQuantile(p: number): number {
  // A&S 26.2.23 for the upper tail of Q(x) = p, so x0 ≈ −t + rational(t) is the lower-tail quantile.
  const t = Math.sqrt(-2 * Math.log(p));
  const numerator = 2.515517 + t * (0.802853 + t * 0.010328);
  const denominator = 1 + t * (1.432788 + t * (0.189269 + t * 0.001308));
  let x = -(t - numerator / denominator);
  for (let i = 0; i < 8; i += 1) {
    // Relative error of Φ(x) against p, divided by the density: the Newton step; Halley's
    // correction (f''/f' = −x for the normal CDF) makes it cubic.
    const density = normalPdf(x);
    if (density === 0) break;
    const step = (normalCdf(x) - p) / density;
    const next = x - step / (1 + (x * step) / 2);
    if (Math.abs(next - x) <= 1e-15 * Math.max(1, Math.abs(x))) return next;
    x = next;
  }
  return x;
}
