/**
 * Detection benchmark: a seeded Monte Carlo that feeds the detectors the same simulated evaluation
 * streams, over a model's life, and measures false rollbacks, detection and games to detection.
 *
 *   npm run bench:detection -- [--runs 300] [--seed 20240601] [--checks 200] [--windows 50,100,400]
 *                              [--draws 0,0.3,0.6] [--formats trinomial,pentanomial] [--alternatives]
 *
 * A run is one production version checked up to `checks` times; each check is a window of W games
 * against the baseline, each game a win, draw or loss drawn from the true expected score
 * E(−drop) = 1/(1 + 10^(drop/400)) with draw ratio d (P(draw) = d, P(win) = E − d/2). Pentanomial
 * windows are W/2 colour-swapped pairs of such games (independent here, so the pairing changes the
 * statistic, not the information). A run ends at its first automatic rollback. Per cell (W, d, format):
 *
 * - drop 0: the share of runs with a (false) rollback within 20, 100 and 200 checks;
 * - drop 50: the share caught within 20 checks;
 * - drop 30: the mean games to the rollback (runs caught within `checks`).
 *
 * Detectors: `statistical` is the shipped one (advanceTest + decideStatistically: SPRTs with alpha spent
 * over a version's tests, CRITICAL from the score bound); `per-test alpha` is the detector before issue 10
 * (the same SPRT, alpha spent again by every test, rollback on accept_h1 only), measured in the same run
 * as the anchor; `threshold` is the threshold rule (classify → escalate → decide, default thresholds).
 * `--alternatives` adds the trade-off table at 50-game windows: other spending sequences, a CUSUM on the
 * per-window LLR and a test that is never restarted, each on the same streams.
 */
import { parseArgs } from 'node:util';
import {
  classify,
  decide,
  escalate,
  type DecisionPolicy,
  type ThresholdPolicy,
} from '../src/policy/index.ts';
import {
  advanceTest,
  decideStatistically,
  DEFAULT_STATISTICAL_POLICY,
  type SprtAccumulator,
  type StatisticalPolicy,
  type WindowOutcomes,
} from '../src/policy/statistical.ts';
import { eloFromScore, llrLogistic, scoreFromElo, sprtBounds, type GameResults } from '../src/stats/index.ts';

const BASELINE_ELO = 1500;
const LIVES = [20, 100, 200] as const;

const THRESHOLDS: ThresholdPolicy = {
  minGames: 50,
  eloDrop: { minor: 20, moderate: 35, severe: 50, critical: 75 },
  winRateDrop: { minor: 0.025, moderate: 0.05, severe: 0.1, critical: 0.15 },
  errorRateSevere: 0.05,
};
const DECISIONS: DecisionPolicy = {
  escalateAt: 2,
  forceActionAt: 3,
  moderateRollbackEloDrop: 30,
  requireApprovalForSevere: false,
};
const SHIPPED: StatisticalPolicy = DEFAULT_STATISTICAL_POLICY;

// ---- seeded PRNG (bench only: src/ stays deterministic) ------------------------------------------------

/** splitmix32 expands the seed into the four words sfc32 needs (both are public-domain generators). */
function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** sfc32 (C. Doty-Humphrey's small fast chaotic PRNG): uniform doubles in [0, 1). */
function sfc32(seed: number): () => number {
  const init = splitmix32(seed);
  let a = init();
  let b = init();
  let c = init();
  let d = init();
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i += 1) next(); // discard the warm-up
  return () => next() / 4294967296;
}

// ---- simulation ----------------------------------------------------------------------------------------

type Format = 'trinomial' | 'pentanomial';

interface Cell {
  readonly games: number;
  readonly draws: number;
  readonly format: Format;
}

/** One window: its counts in the detector's order ([L, D, W] or the five pair counts) and its score. */
interface Window {
  readonly counts: number[];
  readonly score: number;
}

function simulateWindow(random: () => number, cell: Cell, expected: number): Window {
  const pWin = expected - cell.draws / 2;
  const game = (): number => {
    const u = random();
    return u < pWin ? 2 : u < pWin + cell.draws ? 1 : 0; // half-points
  };
  if (cell.format === 'trinomial') {
    const counts = [0, 0, 0];
    for (let g = 0; g < cell.games; g += 1) counts[game()]! += 1;
    return { counts, score: (counts[1]! / 2 + counts[2]!) / cell.games };
  }
  const counts = [0, 0, 0, 0, 0];
  for (let p = 0; p < cell.games / 2; p += 1) counts[game() + game()]! += 1;
  const points = counts.reduce((sum, n, i) => sum + n * i, 0); // half-points over the pairs
  return { counts, score: points / 2 / cell.games };
}

function outcomesOf(window: Window): WindowOutcomes {
  const c = window.counts;
  return c.length === 5
    ? { pentanomial: [c[0]!, c[1]!, c[2]!, c[3]!, c[4]!] }
    : { losses: c[0]!, draws: c[1]!, wins: c[2]! };
}

// ---- detectors: each sees one window at a time and says whether it rolls back --------------------------

interface Detector {
  /** True when this window triggers an automatic rollback. */
  next(window: Window): boolean;
  /** The rollback came from an established CRITICAL drop (shipped detector only). */
  critical?: boolean;
}

function shipped(): Detector {
  let accumulator: SprtAccumulator | null = null;
  const detector: Detector = {
    next(window) {
      const step = advanceTest(outcomesOf(window), accumulator, SHIPPED);
      accumulator = step.accumulator;
      const rollback = decideStatistically({ ...step, sprt: step }, DECISIONS) !== 'watch';
      if (rollback) detector.critical = step.severity === 'critical' && step.decision !== 'accept_h1';
      return rollback;
    },
  };
  return detector;
}

/** SPRTs restarted after every accept_h0; the j-th gets alpha·share(j); rollback on accept_h1 only. */
function restartedSprt(share: (test: number) => number): Detector {
  let counts: number[] | null = null;
  let test = 1;
  return {
    next(window) {
      counts = counts === null ? [...window.counts] : counts.map((n, i) => n + window.counts[i]!);
      const bounds = sprtBounds(SHIPPED.alpha * share(test), SHIPPED.beta);
      const llr = llrLogistic(SHIPPED.elo0, SHIPPED.elo1, counts as unknown as GameResults);
      if (llr >= bounds.upper) return true;
      if (llr <= bounds.lower) {
        counts = null;
        test += 1;
      }
      return false;
    },
  };
}

/** Page's CUSUM on the per-window LLR: S = max(0, S + LLR(window)), alarm at h. */
function cusum(h: number): Detector {
  let sum = 0;
  return {
    next(window) {
      sum = Math.max(
        0,
        sum + llrLogistic(SHIPPED.elo0, SHIPPED.elo1, window.counts as unknown as GameResults),
      );
      return sum >= h;
    },
  };
}

/** One SPRT over the whole life that never accepts H0: alarm when the LLR reaches ln(1/alpha). */
function neverRestarted(): Detector {
  let counts: number[] | null = null;
  const upper = Math.log(1 / SHIPPED.alpha);
  return {
    next(window) {
      counts = counts === null ? [...window.counts] : counts.map((n, i) => n + window.counts[i]!);
      return llrLogistic(SHIPPED.elo0, SHIPPED.elo1, counts as unknown as GameResults) >= upper;
    },
  };
}

/**
 * The threshold rule as the seed ran it: current Elo = baseline + logistic Elo of the window's score
 * (a 0% or 100% score clamped to half a game), the score as the win rate against 0.5, then classify →
 * escalate by streak → decide.
 */
function threshold(games: number): Detector {
  let streak = 0;
  return {
    next(window) {
      const clamped = Math.min(Math.max(window.score, 0.5 / games), 1 - 0.5 / games);
      const classification = classify(
        {
          currentElo: BASELINE_ELO + eloFromScore(clamped),
          baselineElo: BASELINE_ELO,
          currentWinRate: window.score,
          baselineWinRate: 0.5,
        },
        THRESHOLDS,
      );
      if (classification.severity === null) {
        streak = 0;
        return false;
      }
      streak += 1;
      const escalation = escalate(classification.severity, streak, DECISIONS);
      return decide(escalation, classification.eloDrop, DECISIONS) !== 'watch';
    },
  };
}

const ZETA_3 = 1.2020569031595942;
const MAIN = ['statistical', 'per-test alpha', 'threshold'] as const;
const ALTERNATIVES = {
  'alpha/(ζ(3)·j³) (shipped rule, SPRT only)': () => restartedSprt((j) => 1 / (ZETA_3 * j ** 3)),
  'alpha·6/(π²·j²)': () => restartedSprt((j) => 6 / (Math.PI ** 2 * j * j)),
  'alpha/(j(j+1))': () => restartedSprt((j) => 1 / (j * (j + 1))),
  'per-test alpha (before)': () => restartedSprt(() => 1),
  'CUSUM, h = 6': () => cusum(6),
  'CUSUM, h = 7': () => cusum(7),
  'never restarted, ln(1/alpha)': () => neverRestarted(),
} as const;
type Name = string;

function makeMain(name: (typeof MAIN)[number], games: number): Detector {
  if (name === 'statistical') return shipped();
  if (name === 'per-test alpha') return restartedSprt(() => 1);
  return threshold(games);
}

/** The check (1-based) of each detector's first rollback, or null; and whether it was a CRITICAL one. */
function runLife(
  random: () => number,
  cell: Cell,
  drop: number,
  checks: number,
  detectors: Record<Name, Detector>,
): Record<Name, { at: number | null; critical: boolean }> {
  const expected = scoreFromElo(-drop);
  const result: Record<Name, { at: number | null; critical: boolean }> = {};
  const live = new Set(Object.keys(detectors));
  for (const name of live) result[name] = { at: null, critical: false };
  for (let check = 1; check <= checks && live.size > 0; check += 1) {
    const window = simulateWindow(random, cell, expected);
    for (const name of [...live]) {
      const detector = detectors[name]!;
      if (detector.next(window)) {
        result[name] = { at: check, critical: detector.critical === true };
        live.delete(name);
      }
    }
  }
  return result;
}

// ---- tallies and report ---------------------------------------------------------------------------------

interface Tally {
  runs: number;
  falseWithin: number[]; // per LIVES entry
  falseCritical: number; // false rollbacks within the longest life that came from a CRITICAL grade
  caught50: number;
  runs50: number;
  games30: number[];
  runs30: number;
}

const emptyTally = (): Tally => ({
  runs: 0,
  falseWithin: LIVES.map(() => 0),
  falseCritical: 0,
  caught50: 0,
  runs50: 0,
  games30: [],
  runs30: 0,
});

/** p with the half-width of its 95% Monte Carlo interval, in points. */
function proportion(count: number, runs: number): string {
  if (runs === 0) return '—';
  const p = count / runs;
  return `${(100 * p).toFixed(1)}% ±${(196 * Math.sqrt((p * (1 - p)) / runs)).toFixed(1)}`;
}

function meanWithError(values: readonly number[]): { mean: number; half: number } | null {
  if (values.length === 0) return null;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, values.length - 1);
  return { mean, half: 1.96 * Math.sqrt(variance / values.length) };
}

function meanText(values: readonly number[]): string {
  const m = meanWithError(values);
  return m === null ? '—' : `${m.mean.toFixed(0)} ±${m.half.toFixed(0)}`;
}

const row = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;

function tallyCell(
  random: () => number,
  cell: Cell,
  runs: number,
  checks: number,
  names: readonly Name[],
  make: (name: Name) => Detector,
): Record<Name, Tally> {
  const tallies: Record<Name, Tally> = Object.fromEntries(names.map((n) => [n, emptyTally()]));
  const fresh = (): Record<Name, Detector> => Object.fromEntries(names.map((n) => [n, make(n)]));
  for (let r = 0; r < runs; r += 1) {
    const atZero = runLife(random, cell, 0, checks, fresh());
    const atFifty = runLife(random, cell, 50, Math.min(20, checks), fresh());
    const atThirty = runLife(random, cell, 30, checks, fresh());
    for (const name of names) {
      const t = tallies[name]!;
      t.runs += 1;
      const zero = atZero[name]!;
      LIVES.forEach((life, i) => {
        if (zero.at !== null && zero.at <= life) t.falseWithin[i]! += 1;
      });
      if (zero.at !== null && zero.critical) t.falseCritical += 1;
      t.runs50 += 1;
      if (atFifty[name]!.at !== null) t.caught50 += 1;
      t.runs30 += 1;
      const thirty = atThirty[name]!.at;
      if (thirty !== null) t.games30.push(thirty * cell.games);
    }
  }
  return tallies;
}

function parseList(value: string, what: string): number[] {
  const list = value.split(',').map(Number);
  if (list.length === 0 || list.some((n) => !Number.isFinite(n) || n < 0)) {
    console.error(`--${what}: expected comma-separated non-negative numbers, received ${value}`);
    process.exit(2);
  }
  return list;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '300' },
      seed: { type: 'string', default: '20240601' },
      checks: { type: 'string', default: '200' },
      windows: { type: 'string', default: '50,100,400' },
      draws: { type: 'string', default: '0,0.3,0.6' },
      formats: { type: 'string', default: 'trinomial,pentanomial' },
      alternatives: { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const seed = Number(values.seed);
  const checks = Number(values.checks);
  for (const [name, value] of Object.entries({ runs, seed, checks })) {
    if (!Number.isInteger(value) || value < (name === 'seed' ? 0 : 1)) {
      console.error(
        `--${name}: expected a ${name === 'seed' ? 'non-negative' : 'positive'} integer, received ${String(values[name as keyof typeof values])}`,
      );
      process.exit(2);
    }
  }
  const windows = parseList(values.windows, 'windows');
  if (windows.some((w) => !Number.isInteger(w) || w < 2 || w % 2 !== 0)) {
    console.error(`--windows: expected even game counts of at least 2, received ${values.windows}`);
    process.exit(2);
  }
  const drawRatios = parseList(values.draws, 'draws');
  if (drawRatios.some((d) => d >= 2 * scoreFromElo(-50))) {
    console.error(
      `--draws: expected ratios below ${(2 * scoreFromElo(-50)).toFixed(3)}, received ${values.draws}`,
    );
    process.exit(2);
  }
  const formats = values.formats.split(',') as Format[];
  if (formats.some((f) => f !== 'trinomial' && f !== 'pentanomial')) {
    console.error(`--formats: expected trinomial and/or pentanomial, received ${values.formats}`);
    process.exit(2);
  }

  const random = sfc32(seed);
  const started = performance.now();
  console.error(`detection bench: seed ${seed}, ${runs} runs per cell, lives of up to ${checks} checks`);

  const results: Array<{ cell: Cell; tallies: Record<Name, Tally> }> = [];
  for (const format of formats) {
    for (const games of windows) {
      for (const draws of drawRatios) {
        const cell = { games, draws, format };
        const tallies = tallyCell(random, cell, runs, checks, MAIN, (n) =>
          makeMain(n as (typeof MAIN)[number], games),
        );
        results.push({ cell, tallies });
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        console.error(`  ${format}, ${games} games, draws ${draws}: done (${seconds} s)`);
      }
    }
  }
  const alternatives: Array<{ cell: Cell; tallies: Record<Name, Tally> }> = [];
  if (values.alternatives) {
    for (const draws of drawRatios.filter((d) => d === 0 || d === 0.3)) {
      const cell: Cell = { games: 50, draws, format: 'trinomial' };
      const names = Object.keys(ALTERNATIVES);
      const tallies = tallyCell(random, cell, runs, checks, names, (n) =>
        ALTERNATIVES[n as keyof typeof ALTERNATIVES](),
      );
      alternatives.push({ cell, tallies });
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.error(`  alternatives, 50 games, draws ${draws}: done (${seconds} s)`);
    }
  }
  const elapsed = (performance.now() - started) / 1000;

  console.log(
    `\nseed ${seed}; ${runs} runs per cell and drop; lives of up to ${checks} checks; run time ${elapsed.toFixed(1)} s\n`,
  );
  console.log(
    'False rollbacks at a true 0 Elo (share of lives with a rollback within 20/100/200 checks, ±95% MC):\n',
  );
  console.log(
    row([
      'format',
      'games',
      'draws',
      'statistical 20',
      'statistical 100',
      `statistical ${checks}`,
      'of which CRITICAL',
      `per-test alpha ${checks}`,
      `threshold ${Math.min(20, checks)}`,
    ]),
  );
  console.log(row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']));
  for (const { cell, tallies } of results) {
    const s = tallies.statistical!;
    const before = tallies['per-test alpha']!;
    const th = tallies.threshold!;
    console.log(
      row([
        cell.format,
        String(cell.games),
        String(cell.draws),
        ...LIVES.map((life, i) => (life <= checks ? proportion(s.falseWithin[i]!, s.runs) : '—')),
        proportion(s.falseCritical, s.runs),
        proportion(before.falseWithin[LIVES.length - 1]!, before.runs),
        proportion(th.falseWithin[0]!, th.runs),
      ]),
    );
  }

  console.log(
    '\nDetection: a 50-Elo drop caught within 20 checks; mean games to catch a 30-Elo drop (±95% MC), and its ratio to the per-test alpha detector:\n',
  );
  console.log(
    row([
      'format',
      'games',
      'draws',
      '50 Elo: statistical',
      '50 Elo: per-test alpha',
      '50 Elo: threshold',
      '30 Elo games: statistical',
      '30 Elo games: per-test alpha',
      'ratio',
      '30 Elo games: threshold',
      '30 Elo caught: statistical',
    ]),
  );
  console.log(row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']));
  for (const { cell, tallies } of results) {
    const s = tallies.statistical!;
    const before = tallies['per-test alpha']!;
    const th = tallies.threshold!;
    const ratio = (meanWithError(s.games30)?.mean ?? NaN) / (meanWithError(before.games30)?.mean ?? NaN);
    console.log(
      row([
        cell.format,
        String(cell.games),
        String(cell.draws),
        proportion(s.caught50, s.runs50),
        proportion(before.caught50, before.runs50),
        proportion(th.caught50, th.runs50),
        meanText(s.games30),
        meanText(before.games30),
        ratio.toFixed(2),
        meanText(th.games30),
        proportion(s.games30.length, s.runs30),
      ]),
    );
  }

  if (alternatives.length > 0) {
    console.log(
      '\nAlternatives at 50-game trinomial windows (SPRT-type rules only, no CRITICAL rule): false rollbacks over a life, 50 Elo within 20 checks, games to catch 30 Elo:\n',
    );
    console.log(
      row([
        'rule',
        'draws',
        `false ${LIVES[0]}`,
        `false ${LIVES[1]}`,
        `false ${checks}`,
        '50 Elo',
        '30 Elo games',
      ]),
    );
    console.log(row(['---', '---:', '---:', '---:', '---:', '---:', '---:']));
    for (const { cell, tallies } of alternatives) {
      for (const name of Object.keys(ALTERNATIVES)) {
        const t = tallies[name]!;
        console.log(
          row([
            name,
            String(cell.draws),
            ...LIVES.map((life, i) => (life <= checks ? proportion(t.falseWithin[i]!, t.runs) : '—')),
            proportion(t.caught50, t.runs50),
            meanText(t.games30),
          ]),
        );
      }
    }
  }

  console.log('');
  let failed = false;
  const verdict = (ok: boolean, unclear: boolean): string =>
    ok ? 'PASS' : unclear ? 'within MC error' : 'FAIL';
  for (const { cell, tallies } of results) {
    const s = tallies.statistical!;
    const index = LIVES.findIndex((life) => life >= checks);
    const count = s.falseWithin[index === -1 ? LIVES.length - 1 : index]!;
    const p = count / s.runs;
    const half = 1.96 * Math.sqrt((p * (1 - p)) / s.runs);
    const v = verdict(p <= 0.05, p - half <= 0.05);
    failed ||= v === 'FAIL';
    const name = `${cell.format}, ${cell.games} games, draws ${cell.draws}`;
    const lines = [`${name}: false rollbacks over ${checks} checks ${(100 * p).toFixed(1)}% (<= 5%: ${v})`];
    if (cell.games === 50 && cell.draws === 0.3) {
      const q = s.caught50 / s.runs50;
      const qHalf = 1.96 * Math.sqrt((q * (1 - q)) / s.runs50);
      const w = verdict(q >= 0.99, q + qHalf >= 0.99);
      failed ||= w === 'FAIL';
      lines.push(`50 Elo within 20 checks ${(100 * q).toFixed(1)}% (>= 99%: ${w})`);
    }
    if (cell.games === 50 && (cell.draws === 0 || cell.draws === 0.3)) {
      const now = meanWithError(s.games30);
      const before = meanWithError(tallies['per-test alpha']!.games30);
      if (now && before) {
        const ratio = now.mean / before.mean;
        // The ratio's own MC error, from the two means' (independent streams: the errors add).
        const ratioHalf = ratio * Math.hypot(now.half / now.mean, before.half / before.mean);
        const w = verdict(ratio <= 1.25, ratio - ratioHalf <= 1.25);
        failed ||= w === 'FAIL';
        lines.push(
          `30 Elo in ${now.mean.toFixed(0)} games against ${before.mean.toFixed(0)} before, ratio ${ratio.toFixed(2)} ±${ratioHalf.toFixed(2)} (<= 1.25: ${w})`,
        );
      }
    }
    console.log(lines.join('; '));
  }
  if (failed) process.exitCode = 1;
}

main();
