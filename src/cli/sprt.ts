import type { Command } from 'commander';
import {
  eloEstimate,
  gamesOf,
  llrLogistic,
  llrNormalized,
  sprtBounds,
  sprtDecision,
  type GameResults,
  type SprtDecision,
} from '../stats/index.ts';

/**
 * `warden sprt`: the SPRT calculator. Given game results and the two hypotheses, prints what the
 * statistical detector would compute: logistic Elo with its interval, LOS, both LLRs, Wald's bounds and
 * the decision (taken on the logistic LLR, the one the detector uses).
 */

/** Bad command-line input: printed to stderr as is, exit code 2. */
export class UsageError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'UsageError';
    this.problems = problems;
  }
}

export interface SprtInput {
  readonly results: GameResults;
  readonly elo0: number;
  readonly elo1: number;
  readonly alpha: number;
  readonly beta: number;
  readonly confidence: number;
}

export interface SprtReport {
  readonly results: readonly number[];
  readonly kind: 'trinomial' | 'pentanomial';
  readonly games: number;
  readonly elo: number;
  readonly elo95: number;
  readonly elo_lower: number;
  readonly elo_upper: number;
  readonly confidence: number;
  readonly los: number;
  readonly elo0: number;
  readonly elo1: number;
  readonly alpha: number;
  readonly beta: number;
  readonly llr_logistic: number;
  readonly llr_normalized: number;
  readonly lower_bound: number;
  readonly upper_bound: number;
  readonly decision: SprtDecision;
}

export function sprtReport(input: SprtInput): SprtReport {
  const estimate = eloEstimate(input.results, input.confidence);
  const bounds = sprtBounds(input.alpha, input.beta);
  const llr = llrLogistic(input.elo0, input.elo1, input.results);
  return {
    results: [...input.results],
    kind: input.results.length === 5 ? 'pentanomial' : 'trinomial',
    games: gamesOf(input.results),
    elo: estimate.elo,
    elo95: estimate.elo95,
    elo_lower: estimate.lower,
    elo_upper: estimate.upper,
    confidence: input.confidence,
    los: estimate.los,
    elo0: input.elo0,
    elo1: input.elo1,
    alpha: input.alpha,
    beta: input.beta,
    llr_logistic: llr,
    llr_normalized: llrNormalized(input.elo0, input.elo1, input.results),
    lower_bound: bounds.lower,
    upper_bound: bounds.upper,
    decision: sprtDecision(llr, bounds),
  };
}

function percent(value: number): string {
  return `${Number((value * 100).toPrecision(4))}%`;
}

function signed(value: number, digits: number): string {
  return `${value > 0 ? '+' : ''}${value.toFixed(digits)}`;
}

const DECISION_TEXT: Record<SprtDecision, string> = {
  accept_h1: 'accept_h1 (H1 holds: roll back)',
  accept_h0: 'accept_h0 (H0 holds: the version passes this test; the detector starts the next)',
  continue: 'continue (play more games)',
};

/** An aligned block for a person. */
export function formatSprtReport(report: SprtReport): string {
  const counts =
    report.kind === 'trinomial'
      ? `L ${report.results[0]}, D ${report.results[1]}, W ${report.results[2]}`
      : `LL ${report.results[0]}, LD+DL ${report.results[1]}, LW+DD+WL ${report.results[2]}, DW+WD ${report.results[3]}, WW ${report.results[4]}`;
  const lines: Array<[string, string]> = [
    ['results', `${counts} (${report.kind}, ${report.games} games)`],
    ['elo', `${signed(report.elo, 2)} ± ${report.elo95.toFixed(2)} (${percent(report.confidence)})`],
    ['interval', `${signed(report.elo_lower, 2)} .. ${signed(report.elo_upper, 2)}`],
    ['los', `${percent(report.los)} (P(true elo > 0))`],
    ['hypotheses', `H0 elo ${signed(report.elo0, 2)}, H1 elo ${signed(report.elo1, 2)}`],
    ['llr_logistic', report.llr_logistic.toFixed(4)],
    ['llr_normalized', `${report.llr_normalized.toFixed(4)} (elo0 and elo1 read as normalized Elo)`],
    [
      'bounds',
      `${report.lower_bound.toFixed(4)} .. ${report.upper_bound.toFixed(4)} (alpha ${report.alpha}, beta ${report.beta})`,
    ],
    ['decision', DECISION_TEXT[report.decision]],
  ];
  const width = Math.max(...lines.map(([label]) => label.length)) + 2;
  return lines.map(([label, value]) => `${label.padEnd(width)}${value}`).join('\n');
}

// ---- parsing: every problem at once, as "--option: expected …, received …" ------------------------------

export interface RawSprtOptions {
  readonly results?: string | undefined;
  readonly elo0?: string | undefined;
  readonly elo1?: string | undefined;
  readonly alpha?: string | undefined;
  readonly beta?: string | undefined;
  readonly confidence?: string | undefined;
}

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function parseNumber(raw: string | undefined, option: string, problems: string[]): number {
  if (raw === undefined || !NUMBER.test(raw.trim())) {
    problems.push(`${option}: expected a number, received ${raw === undefined ? 'nothing' : `"${raw}"`}`);
    return Number.NaN;
  }
  return Number(raw);
}

function parseProbability(raw: string | undefined, option: string, problems: string[]): number {
  const value = parseNumber(raw, option, problems);
  if (!Number.isNaN(value) && !(value > 0 && value < 1)) {
    problems.push(`${option}: expected a number strictly between 0 and 1, received ${raw}`);
  }
  return value;
}

function parseResults(raw: string | undefined, problems: string[]): GameResults | null {
  const expected =
    '3 counts L,D,W or 5 pentanomial pair counts LL,LD+DL,LW+DD+WL,DW+WD,WW, separated by commas';
  if (raw === undefined) {
    problems.push(`--results: expected ${expected}, received nothing`);
    return null;
  }
  const parts = raw.split(',').map((part) => part.trim());
  if (parts.length !== 3 && parts.length !== 5) {
    problems.push(
      `--results: expected ${expected}, received ${parts.length} value${parts.length === 1 ? '' : 's'} "${raw}"`,
    );
    return null;
  }
  const before = problems.length;
  const counts = parts.map((part, i) => {
    if (!/^\d+$/.test(part)) {
      problems.push(`--results: expected count ${i + 1} to be a non-negative integer, received "${part}"`);
    }
    return Number(part);
  });
  if (problems.length > before) return null;
  if (counts.every((count) => count === 0)) {
    problems.push(`--results: expected at least one game, received all-zero counts "${raw}"`);
    return null;
  }
  return counts as unknown as GameResults;
}

/** Validates the raw option strings; throws a UsageError listing every problem. */
export function parseSprtOptions(raw: RawSprtOptions): SprtInput {
  const problems: string[] = [];
  const results = parseResults(raw.results, problems);
  const elo0 = parseNumber(raw.elo0, '--elo0', problems);
  const elo1 = parseNumber(raw.elo1, '--elo1', problems);
  const alpha = parseProbability(raw.alpha, '--alpha', problems);
  const beta = parseProbability(raw.beta, '--beta', problems);
  const confidence = parseProbability(raw.confidence, '--confidence', problems);
  if (!Number.isNaN(elo0) && elo0 === elo1) {
    problems.push(`--elo1: expected a value different from --elo0 (${raw.elo0}), received ${raw.elo1}`);
  }
  if (alpha > 0 && alpha < 1 && beta > 0 && beta < 1 && alpha + beta >= 1) {
    problems.push(`--alpha + --beta: expected less than 1, received ${raw.alpha} + ${raw.beta}`);
  }
  if (problems.length > 0 || results === null) throw new UsageError(problems);
  return { results, elo0, elo1, alpha, beta, confidence };
}

export function registerSprtCommand(program: Command): void {
  program
    .command('sprt')
    .description('SPRT calculator: Elo, LOS, LLR and the decision for game results (fishtest conventions)')
    .requiredOption('--results <counts>', 'L,D,W (3 counts) or LL,LD+DL,LW+DD+WL,DW+WD,WW (5 pair counts)')
    .option('--elo0 <elo>', 'H0: Elo of the current version against the baseline', '0')
    .option('--elo1 <elo>', 'H1: Elo under the alternative (a regression: below elo0)', '-30')
    .option('--alpha <p>', 'P(accept H1 | H0)', '0.05')
    .option('--beta <p>', 'P(accept H0 | H1)', '0.05')
    .option('--confidence <c>', 'confidence of the Elo interval', '0.95')
    .option('--json', 'print one JSON object instead of the aligned block')
    .action((options: RawSprtOptions & { json?: boolean }) => {
      const input = parseSprtOptions(options);
      let report: SprtReport;
      try {
        report = sprtReport(input);
      } catch (error) {
        // The statistics reject inputs outside their domain (an unreachable hypothesis) with a RangeError.
        if (error instanceof RangeError) throw new UsageError([error.message]);
        throw error;
      }
      process.stdout.write(`${options.json ? JSON.stringify(report) : formatSprtReport(report)}\n`);
    });
}
