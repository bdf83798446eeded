import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseConfig } from '../../src/config/load.ts';
import { jsonLines } from '../../src/lab/sources.ts';
import { replay, whatIf } from '../../src/lab/replay.ts';
import { formatReport } from '../../src/lab/format.ts';
import { PolicyEngine } from '../../src/lab/engine.ts';
import { LIVE, LOOSER, STRICTER, T0, evaluation, knownVersions, promotion, toJsonLines } from './support.ts';

const live = parseConfig(LIVE);
const history = toJsonLines(knownVersions());
const pairs = (rows: Array<{ from_version: string; to_version: string }>) =>
  rows.map((r) => `${r.from_version}->${r.to_version}`);

describe('what-if replay over known good and bad versions', () => {
  it('the live configuration rolls back exactly the bad versions, to the last known-good one', () => {
    const run = replay(live, jsonLines(history));
    expect(run.issues).toEqual([]);
    const [hex8] = run.summary.models;
    expect(hex8!.rollbacks.map((r) => `${r.fromVersion}->${r.toVersion}`)).toEqual(['v2->v1', 'v4->v3']);
    // The severe drop is acted on at its first evaluation: no delay.
    expect(hex8!.rollbacks.map((r) => r.msFromFirstBadEvaluation)).toEqual([0, 0]);
    // Nobody resumes training in a replay: paused from the first rollback to the last input.
    expect(run.summary.pausedHours.hex8).toBeCloseTo((7 * 60 - 130) / 60, 5);
  });

  it('a stricter configuration also rolls back the good but noisy version, and the report shows it', () => {
    const report = whatIf(live, parseConfig(STRICTER), jsonLines(history), { source: 'history.jsonl' });
    const [hex8] = report.models;
    expect(pairs(hex8!.live.rollbacks)).toEqual(['v2->v1', 'v4->v3']);
    expect(pairs(hex8!.candidate.rollbacks)).toEqual(['v2->v1', 'v3->v1', 'v4->v1']);
    expect(pairs(hex8!.rollbacks_added)).toEqual(['v3->v1', 'v4->v1']);
    expect(pairs(hex8!.rollbacks_removed)).toEqual(['v4->v3']);
    expect(report.totals).toMatchObject({ rollbacks_added: 2, rollbacks_removed: 1, models_changed: 1 });
    expect(report.verdict.failed).toBe(true);
    const text = formatReport(report);
    expect(text).toMatch(/hex8\s+2 -> 3\s+\+2\s+-1/);
    expect(text).toContain('+ hex8: the candidate rolls back v3 -> v1');
    expect(text).toContain('- hex8: the candidate does not roll back v4 -> v3');
  });

  it('a looser configuration rolls back neither bad version, and training is never paused', () => {
    const report = whatIf(live, parseConfig(LOOSER), jsonLines(history), {
      source: 'history.jsonl',
      failOn: 'added',
    });
    const [hex8] = report.models;
    expect(pairs(hex8!.candidate.rollbacks)).toEqual([]);
    expect(pairs(hex8!.rollbacks_removed)).toEqual(['v2->v1', 'v4->v3']);
    expect(hex8!.candidate.training_paused_hours).toBe(0);
    expect(hex8!.live.training_paused_hours).toBeGreaterThan(4);
    // --fail-on added: removing rollbacks passes the gate.
    expect(report.verdict).toMatchObject({ fail_on: 'added', failed: false });
    expect(formatReport(report)).toContain('- hex8: the candidate does not roll back v2 -> v1');
  });

  it('the same configuration changes nothing and passes the gate', () => {
    const report = whatIf(live, live, jsonLines(history), { source: 'history.jsonl' });
    expect(report.totals).toMatchObject({ rollbacks_added: 0, rollbacks_removed: 0 });
    expect(report.verdict.failed).toBe(false);
  });
});

describe('timers on the virtual clock', () => {
  it('an unanswered approval expires at its deadline, between inputs, and the rollback follows then', () => {
    const config = parseConfig({
      detection: { mode: 'threshold' },
      approval: { requireForSevere: true, timeoutSeconds: 1800, onTimeout: 'rollback' },
    });
    const lines = [
      promotion(T0, 'm', 'v1'),
      promotion(T0 + 60, 'm', 'v2'),
      evaluation(T0 + 600, 'm', 'v2', 1440),
      // The next input is two hours later: the deadline (30 min) falls between the two.
      evaluation(T0 + 600 + 7200, 'm', 'v1', 1500),
    ];
    const run = replay(config, jsonLines(toJsonLines(lines)));
    const [m] = run.summary.models;
    expect(m!.approvals).toHaveLength(1);
    expect(m!.approvals[0]!.deadline).toBe((T0 + 600 + 1800) * 1000);
    expect(m!.rollbacks).toHaveLength(1);
    expect(m!.rollbacks[0]).toMatchObject({
      at: (T0 + 600 + 1800) * 1000,
      fromVersion: 'v2',
      toVersion: 'v1',
      trigger: 'approval_expired',
      msFromFirstBadEvaluation: 1_800_000,
    });
  });

  it('auto-resume ends the pause on time, and the paused hours count only the pause', () => {
    const config = parseConfig({ detection: { mode: 'threshold' }, training: { autoResumeSeconds: 3600 } });
    const lines = [
      promotion(T0, 'm', 'v1'),
      promotion(T0 + 60, 'm', 'v2'),
      evaluation(T0 + 120, 'm', 'v2', 1400),
      evaluation(T0 + 10 * 3600, 'm', 'v1', 1500),
    ];
    const run = replay(config, jsonLines(toJsonLines(lines)));
    expect(run.summary.pausedHours.m).toBeCloseTo(1, 6);
  });

  it('`until` runs the clock past the last input, firing what is due by then', () => {
    const config = parseConfig({
      detection: { mode: 'threshold' },
      approval: { requireForSevere: true, timeoutSeconds: 600 },
    });
    const lines = [
      promotion(T0, 'm', 'v1'),
      promotion(T0 + 60, 'm', 'v2'),
      evaluation(T0 + 120, 'm', 'v2', 1440),
    ];
    expect(replay(config, jsonLines(toJsonLines(lines))).summary.models[0]!.rollbacks).toHaveLength(0);
    const later = replay(config, jsonLines(toJsonLines(lines)), { until: (T0 + 3600) * 1000 });
    expect(later.summary.models[0]!.rollbacks).toHaveLength(1);
  });
});

describe('bad history', () => {
  it('reports every bad line with what was expected and what was received, and replays the rest', () => {
    const lines = [
      JSON.stringify(promotion(T0, 'm', 'v1')),
      '{"kind": "evaluation", "model_id": "m"',
      JSON.stringify({ ...evaluation(T0 + 60, 'm', 'v1', 1500), kind: 'verdict' }),
      JSON.stringify({ ...evaluation(T0 + 60, 'm', 'v1', 1500), timestamp: undefined }),
      JSON.stringify({ ...evaluation(T0 + 60, 'm', 'v1', 1500), games_played: -3 }),
      JSON.stringify(evaluation(T0 + 60, 'ghost', 'v1', 1500)),
      JSON.stringify(evaluation(T0 + 30, 'm', 'v1', 1500)),
      '',
      '[1, 2]',
      JSON.stringify(promotion(T0 + 120, 'm', 'v2')),
      JSON.stringify(evaluation(T0 + 180, 'm', 'v2', 1400)),
    ];
    const run = replay(live, jsonLines(lines.join('\n')));
    const byLine = Object.fromEntries(run.issues.map((i) => [i.line, i]));
    expect(byLine[2]!.problem).toMatch(/expected one JSON object a line, received text that is not JSON/);
    expect(byLine[3]!.problem).toBe('kind: expected "promotion" or "evaluation", received "verdict"');
    expect(byLine[4]!.problem).toMatch(/^timestamp: required: expected epoch seconds .* received nothing$/);
    expect(byLine[5]!.problem).toMatch(/^games_played: .*received -3/);
    expect(byLine[6]!.problem).toBe(
      'model_id: expected a model promoted earlier in this history, received "ghost" (an unknown model)',
    );
    // Out of order: applied at the previous input's time, with a warning.
    expect(byLine[7]).toMatchObject({ level: 'warning' });
    expect(byLine[7]!.problem).toMatch(/^timestamp: expected a time at or after the previous input's/);
    expect(byLine[9]!.problem).toBe('expected one JSON object a line, received [1,2]');
    expect(Object.keys(byLine).map(Number)).toEqual([2, 3, 4, 5, 6, 7, 9]);
    // The good lines after the bad ones still count: v2 is rolled back.
    expect(run.summary.models[0]!.rollbacks.map((r) => r.fromVersion)).toEqual(['v2']);
    expect(run.lines).toBe(10);
  });

  it('hostile lines never throw, replay is deterministic, and every line is applied or reported', () => {
    const line = fc.oneof(
      fc.string(),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc
        .record({
          kind: fc.constantFrom('promotion', 'evaluation', 'other'),
          model_id: fc.constantFrom('a', 'b', 'a_v2', '', 'x.y', '../etc'),
          version: fc.option(fc.constantFrom('v1', 'v2', 'v3', ''), { nil: undefined }),
          current_elo: fc.option(fc.double({ min: -2e5, max: 2e5, noNaN: false }), { nil: undefined }),
          baseline_elo: fc.option(fc.constant(1500), { nil: undefined }),
          games_played: fc.option(fc.integer({ min: -5, max: 1000 }), { nil: undefined }),
          timestamp: fc.oneof(
            fc.integer({ min: T0 - 10_000, max: T0 + 1e6 }),
            fc.constant('2026-03-01T00:00:00Z'),
            fc.constant('yesterday'),
            fc.constant(-1),
            // Far ends: the last second of year 9999, beyond it, and beyond what a Date holds.
            fc.constantFrom(253_402_300_799, 253_402_300_800, 8.64e12, 1e20, Number.MAX_VALUE),
            fc.constant('9999-12-31T23:59:59-14:00'),
          ),
        })
        .map((r) => JSON.stringify(r)),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 60 }), (lines) => {
        const text = lines.join('\n');
        const a = replay(live, jsonLines(text), { until: (T0 + 2e6) * 1000 });
        const b = replay(live, jsonLines(text), { until: (T0 + 2e6) * 1000 });
        expect(b.summary).toEqual(a.summary);
        const skipped = a.issues.filter((i) => i.level === 'skipped').length;
        expect(a.summary.applied + skipped).toBe(a.lines);
        // And the report of it can be written (its times are dates a person can read).
        const report = whatIf(live, live, jsonLines(text), { source: 'hostile', until: (T0 + 2e6) * 1000 });
        expect(formatReport(report)).toContain('verdict:');
      }),
      { numRuns: 150 },
    );
  });
});

describe('the replay engine over a long life', () => {
  it('keeps its timers bounded however often they are re-armed, and fires the live ones on time', () => {
    // One model, promoted and rolled back hourly, with a cooldown of a year: each rollback arms a new one
    // long before the last ends, leaving a stale timer entry behind (popped only when its time comes).
    const config = parseConfig({
      detection: { mode: 'threshold' },
      cooldownSeconds: 31_536_000,
      autoRollbackLimit: { max: 10, windowSeconds: 3_600 },
    });
    const engine = new PolicyEngine(config);
    let line = 0;
    const feed = (at: number, kind: string, payload: Record<string, unknown>) =>
      expect(engine.feed({ kind, at: at * 1000, payload, line: ++line })).toBeNull();
    feed(T0, 'promotion', { model_id: 'long', version: 'v1', elo: 1500 });
    const cycles = 3_000;
    let most = 0;
    for (let n = 1; n <= cycles; n++) {
      // A good version, then a bad one rolled back to it.
      const t = T0 + n * 3_600;
      feed(t, 'promotion', { model_id: 'long', version: `good${n}`, elo: 1500 });
      feed(t + 30, 'promotion', { model_id: 'long', version: `bad${n}`, elo: 1500 });
      feed(t + 60, 'evaluation', { model_id: 'long', current_elo: 1350, games_played: 200 });
      most = Math.max(most, engine.timerEntries());
    }
    expect(most).toBeLessThanOrEqual(2 * 2 + 1024 + 1);
    const [model] = engine.summary().models;
    expect(model!.rollbacks).toHaveLength(cycles);
    // The last cooldown is live: it ends on time, a year after the last rollback.
    const last = model!.rollbacks.at(-1)!.at;
    expect(engine.nextDeadline()).toBe(last + 31_536_000_000);
  });
});
