/**
 * Brent's method (R. P. Brent, "Algorithms for Minimization without Derivatives", 1973, ch. 4): keeps a
 * bracket [a, b] with a sign change, tries inverse quadratic interpolation or a secant step, and falls
 * back to bisection whenever the fast step would leave the bracket or not shrink it fast enough. It
 * therefore never does worse than bisection, and converges superlinearly on smooth functions.
 */

export interface RootOptions {
  /** Absolute tolerance on x; a relative 4·ε·|x| is always added. */
  readonly xTolerance?: number;
  readonly maxIterations?: number;
}

export function findRoot(
  f: (x: number) => number,
  lower: number,
  upper: number,
  options: RootOptions = {},
): number {
  const xTolerance = options.xTolerance ?? 1e-15;
  const maxIterations = options.maxIterations ?? 200;
  let a = lower;
  let b = upper;
  let fa = f(a);
  let fb = f(b);
  if (Number.isNaN(fa) || Number.isNaN(fb)) {
    throw new RangeError(
      `findRoot: expected finite values at the ends of [${lower}, ${upper}], received NaN`,
    );
  }
  if (fa === 0) return a;
  if (fb === 0) return b;
  if (Math.sign(fa) === Math.sign(fb)) {
    throw new RangeError(
      `findRoot: expected a sign change on [${lower}, ${upper}], received f(lower) = ${fa} and f(upper) = ${fb}`,
    );
  }
  // b is the best estimate so far, a the other end of the bracket, c the previous b.
  if (Math.abs(fa) < Math.abs(fb)) [a, b, fa, fb] = [b, a, fb, fa];
  let c = a;
  let fc = fa;
  let d = c; // the b before c; only read after the first step
  let bisected = true;

  for (let i = 0; i < maxIterations; i += 1) {
    const tolerance = xTolerance + 4 * Number.EPSILON * Math.abs(b);
    if (fb === 0 || Math.abs(b - a) <= tolerance) return b;

    let s: number;
    if (fa !== fc && fb !== fc) {
      // Inverse quadratic interpolation through (a, fa), (b, fb), (c, fc).
      s =
        (a * fb * fc) / ((fa - fb) * (fa - fc)) +
        (b * fa * fc) / ((fb - fa) * (fb - fc)) +
        (c * fa * fb) / ((fc - fa) * (fc - fb));
    } else {
      s = b - (fb * (b - a)) / (fb - fa); // secant
    }

    const quarter = (3 * a + b) / 4;
    const outside = !((s > quarter && s < b) || (s < quarter && s > b));
    const slow: boolean = bisected
      ? Math.abs(s - b) >= Math.abs(b - c) / 2
      : Math.abs(s - b) >= Math.abs(c - d) / 2;
    const tiny: boolean = bisected ? Math.abs(b - c) < tolerance : Math.abs(c - d) < tolerance;
    bisected = outside || slow || tiny || !Number.isFinite(s);
    if (bisected) s = (a + b) / 2;

    const fs = f(s);
    d = c;
    c = b;
    fc = fb;
    if (Math.sign(fa) === Math.sign(fs)) {
      a = s;
      fa = fs;
    } else {
      b = s;
      fb = fs;
    }
    if (Math.abs(fa) < Math.abs(fb)) [a, b, fa, fb] = [b, a, fb, fa];
  }
  return b;
}
