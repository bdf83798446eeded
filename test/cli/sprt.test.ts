import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FISHTEST_CASES } from '../stats/fishtest-vectors.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the real executable, as a user would: `node bin/warden.js ...`. */
function warden(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['bin/warden.js', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 15_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function fishtestCase(results: readonly number[]) {
  const found = FISHTEST_CASES.find((c) => c.results.join(',') === results.join(','));
  if (found === undefined) throw new Error(`no fishtest case ${results.join(',')}`);
  return found;
}

describe('cli: warden sprt', () => {
  it('--json prints one object whose statistics match fishtest (trinomial, L,D,W order)', () => {
    const run = warden('sprt', '--results', '130,158,112', '--elo0', '0', '--elo1', '-30', '--json');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout) as Record<string, unknown>;
    const reference = fishtestCase([130, 158, 112]);
    const hypothesis = reference.llr.find((h) => h.elo0 === 0 && h.elo1 === -30);
    expect(report).toMatchObject({
      results: [130, 158, 112],
      kind: 'trinomial',
      games: 400,
      decision: 'continue',
    });
    expect(report.elo).toBeCloseTo(reference.elo, 6);
    expect(report.elo95).toBeCloseTo(reference.elo95, 6);
    expect(report.los).toBeCloseTo(reference.los, 6);
    expect(report.llr_logistic).toBeCloseTo(hypothesis?.llr_logistic as number, 6);
    expect(report.llr_normalized).toBeCloseTo(hypothesis?.llr_normalized as number, 6);
    expect(report.lower_bound).toBeCloseTo(-2.9444389791664403, 12);
    expect(report.upper_bound).toBeCloseTo(2.9444389791664403, 12);
  });

  it('takes five pentanomial counts and other hypotheses and error rates', () => {
    const run = warden(
      'sprt',
      '--results',
      '92,125,43,79,161',
      '--elo0=-1.75',
      '--elo1',
      '0.25',
      '--alpha',
      '0.1',
      '--beta',
      '0.2',
      '--json',
    );
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout) as Record<string, number | string>;
    const reference = fishtestCase([92, 125, 43, 79, 161]);
    const hypothesis = reference.llr.find((h) => h.elo0 === -1.75 && h.elo1 === 0.25);
    expect(report.kind).toBe('pentanomial');
    expect(report.games).toBe(1000);
    expect(report.elo).toBeCloseTo(reference.elo, 6);
    expect(report.llr_logistic).toBeCloseTo(hypothesis?.llr_logistic as number, 6);
    expect(report.lower_bound).toBeCloseTo(Math.log(0.2 / 0.9), 12);
    expect(report.upper_bound).toBeCloseTo(Math.log(0.8 / 0.1), 12);
  });

  it('decides accept_h1 on a clear regression, with the defaults elo0 0, elo1 -30', () => {
    const run = warden('sprt', '--results', '9620,2566,7814', '--json');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      elo0: 0,
      elo1: -30,
      alpha: 0.05,
      beta: 0.05,
      decision: 'accept_h1',
    });
  });

  it('prints an aligned block for a person by default', () => {
    const run = warden('sprt', '--results', '130,158,112', '--elo1', '-30', '--confidence', '0.9');
    expect(run.status).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines.map((line) => line.split(/\s{2,}/)[0])).toEqual([
      'results',
      'elo',
      'interval',
      'los',
      'hypotheses',
      'llr_logistic',
      'llr_normalized',
      'bounds',
      'decision',
    ]);
    const valueColumns = new Set(lines.map((line) => line.search(/(?<=\S\s{2,})\S/)));
    expect(valueColumns.size).toBe(1);
    expect(run.stdout).toContain('elo             -15.65 ± ');
    expect(run.stdout).toContain('(90%)');
    expect(run.stdout).toContain('llr_logistic    0.1070');
    expect(run.stdout).toContain('decision        continue');
  });

  it.each([
    [
      ['--results', '1,2,3,4'],
      /--results: expected 3 counts L,D,W or 5 pentanomial pair counts .*received 4 values "1,2,3,4"/,
    ],
    [['--results', '1,-3,2'], /--results: expected count 2 to be a non-negative integer, received "-3"/],
    [['--results', '1,2.5,2'], /--results: expected count 2 to be a non-negative integer, received "2.5"/],
    [['--results', '0,0,0'], /--results: expected at least one game, received all-zero counts "0,0,0"/],
    [
      ['--results', '1,2,3', '--alpha', '1.5'],
      /--alpha: expected a number strictly between 0 and 1, received 1.5/,
    ],
    [['--results', '1,2,3', '--beta', '0'], /--beta: expected a number strictly between 0 and 1, received 0/],
    [['--results', '1,2,3', '--elo1', 'ten'], /--elo1: expected a number, received "ten"/],
    [
      ['--results', '1,2,3', '--elo0', '5', '--elo1', '5'],
      /--elo1: expected a value different from --elo0 \(5\), received 5/,
    ],
  ])('rejects %j on stderr with exit code 2', (args, message) => {
    const run = warden('sprt', ...args);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(message);
  });

  it('computes lopsided results that the solver used to refuse (984030-0-0, H1 +1000; 5,000,000 wins)', () => {
    for (const args of [
      ['--results', '984030,0,0', '--elo1', '1000'],
      ['--results', '0,0,5000000'],
    ]) {
      const run = warden('sprt', ...args);
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/^llr_normalized\s+-\d+\.\d{4} /m);
      expect(run.stdout).toMatch(/^decision\s+accept_h0/m);
    }
  });

  it('reports every problem at once', () => {
    const run = warden('sprt', '--results', '1,2', '--alpha', '2', '--confidence', 'high');
    expect(run.status).toBe(2);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(3);
  });

  it('exits 2 when --results is missing or an option is unknown', () => {
    const missing = warden('sprt');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/required option '--results <counts>' not specified/);
    const unknown = warden('sprt', '--results', '1,2,3', '--bogus');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--bogus'/);
  });
});
