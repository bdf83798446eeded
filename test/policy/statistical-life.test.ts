/**
 * Issue 10 and issue 8 finding 2, against the real embedded Warden (SQLite, manual clock, a registry the
 * test settles): CRITICAL always rolls back in statistical mode, small windows count toward the test,
 * bounds are sound at the extremes, extreme counts never crash, and the running test is visible.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseConfig } from '../../src/config/load.ts';
import { modelPolicyFrom } from '../../src/machines/model-policy.ts';
import { initialModelContext } from '../../src/machines/model-logic.ts';
import { stepModel } from '../../src/machines/model-machine.ts';
import type { ModelContext, ModelStateName } from '../../src/machines/model-types.ts';
import { startTestWarden, type TestWarden } from '../support/test-warden.ts';
import {
  OPERATOR_TOKEN,
  PRODUCER_TOKEN,
  promoteTwo,
  startTestService,
  type TestService,
} from '../http/support.ts';
import { assessStatistically, DEFAULT_STATISTICAL_POLICY } from '../../src/policy/statistical.ts';
import { eloFromScore, eloUpperBound } from '../../src/stats/index.ts';
import { formatModel, formatStatus } from '../../src/cli/format.ts';

const MODEL = 'hex8_2p';
let tw: TestWarden;

afterEach(async () => {
  await tw?.close();
});

const published = (t: TestWarden, kind: string) =>
  t.bus.log.filter((m) => m.subject.split('.')[2] === kind).map((m) => m.data as Record<string, unknown>);

async function start(config: Record<string, unknown> = {}): Promise<TestWarden> {
  const t = await startTestWarden({ detection: { mode: 'statistical' }, ...config });
  t.registry.autoSettle = true;
  for (const version of ['v1', 'v2']) await t.warden.promote({ model_id: MODEL, version, elo: 1500 });
  return t;
}

async function evaluate(t: TestWarden, wins: number, draws: number, losses: number) {
  t.clock.advance(60_000);
  const result = await t.warden.evaluate({
    model_id: MODEL,
    games_played: wins + draws + losses,
    wins,
    draws,
    losses,
  });
  await t.warden.idle();
  return result;
}

describe('statistical mode: CRITICAL always rolls back', () => {
  it.each([
    ['automatic policy', {}],
    ['approval required for SEVERE', { approval: { requireForSevere: true } }],
  ])('12-0-38 in one 50-game window rolls back at once (%s)', async (_, config) => {
    tw = await start(config);
    const result = await evaluate(tw, 12, 0, 38);
    expect(result.outcome).toMatchObject({ kind: 'regression', severity: 'critical', decision: 'rollback' });
    expect(tw.registry.applied.map((r) => [r.fromVersion, r.toVersion])).toEqual([['v2', 'v1']]);
    const critical = published(tw, 'regression_critical');
    expect(critical).toHaveLength(1);
    // The SPRT alone has not decided yet (LLR 2.06): the confidence bound established the CRITICAL drop.
    expect(critical[0]!.statistics).toMatchObject({
      mode: 'statistical',
      sprt_decision: 'continue',
      elo0: 0,
      elo1: -30,
      format: 'trinomial',
      test_number: 1,
      games: 50,
    });
    expect(published(tw, 'promotion_rolled_back')[0]).toMatchObject({
      triggered_by: 'auto_regression_critical',
    });
  });

  it('a lucky small window cannot claim CRITICAL: 0-0-3 is graded by a score bound, not σ̂ = 0', async () => {
    tw = await start();
    const result = await evaluate(tw, 0, 0, 3);
    expect(result.outcome.kind).toBe('healthy');
    expect(tw.registry.applied).toHaveLength(0);
  });
});

describe('statistical mode: every window counts, however small', () => {
  it('49-game windows at about −110 Elo accumulate into a rollback; minGames does not gate them', async () => {
    tw = await start();
    const outcomes: string[] = [];
    for (let i = 0; i < 10 && tw.registry.applied.length === 0; i += 1) {
      outcomes.push((await evaluate(tw, 17, 0, 32)).outcome.kind);
    }
    expect(outcomes).not.toContain('insufficient_evidence');
    expect(outcomes.length).toBeGreaterThan(1); // one window alone was not enough: they accumulated
    expect(tw.registry.applied).toHaveLength(1);
    const rolledBack = published(tw, 'promotion_rolled_back')[0]!;
    expect(rolledBack.triggered_by).toMatch(/^auto_regression_(sprt|critical)$/);
  });

  it('a 49-game evaluation without outcomes is still judged by the threshold rule, so minGames gates it', async () => {
    tw = await start();
    tw.clock.advance(60_000);
    const result = await tw.warden.evaluate({ model_id: MODEL, games_played: 49, current_elo: 1300 });
    expect(result.outcome).toEqual({ kind: 'insufficient_evidence', gamesPlayed: 49, minGames: 50 });
  });
});

describe('statistical mode: bounds a statistician would sign', () => {
  it('0 wins, 0 draws, 50 losses establishes a drop of about 446 Elo at the first look, not 1139', () => {
    const a = assessStatistically({ wins: 0, draws: 0, losses: 50 }, null, DEFAULT_STATISTICAL_POLICY);
    // The first look's bound is one-sided at 97.5%; the exact (Clopper–Pearson) bound for 0 of 50 there
    // is 1 − 0.025^(1/50) = 0.0711, a drop of 446.4 Elo. The score bound agrees to within 1 Elo.
    const exactDrop = -eloFromScore(1 - 0.025 ** (1 / 50));
    expect(exactDrop).toBeCloseTo(446.4, 1);
    expect(Math.abs(a.eloDropLower - exactDrop)).toBeLessThan(1);
    expect(a.severity).toBe('critical');
    expect(a.reason).toMatch(/a drop of at least 44[56]\.\d Elo established at 95% \(critical\)/);
    // At a single 95% look: Wilson's 0.0513 (503 Elo) beside Clopper–Pearson's 0.0582 (483 Elo).
    const at95 = -eloUpperBound([50, 0, 0], 0.95);
    expect(at95).toBeGreaterThan(480);
    expect(at95).toBeLessThan(510);
  });
});

describe('statistical mode: extreme counts never crash (issue 8, finding 2)', () => {
  it.each([
    ['5,000,000 wins', 5_000_000, 0, 0],
    ['4,000,000 losses', 0, 0, 4_000_000],
    ['25,000,000 draws', 0, 25_000_000, 0],
    ['1e9 wins', 1_000_000_000, 0, 0],
    ['1e9 draws', 0, 1_000_000_000, 0],
    ['near 1e9, one loss', 499_999_999, 500_000_000, 1],
  ])('%s: processed, with finite statistics, and the service keeps working', async (_, w, d, l) => {
    tw = await start();
    const result = await evaluate(tw, w, d, l);
    expect(['healthy', 'regression']).toContain(result.outcome.kind);
    for (const event of published(tw, 'regression_detected')) {
      const statistics = event.statistics as Record<string, unknown>;
      for (const key of ['elo', 'elo_lower', 'elo_upper', 'llr', 'llr_lower', 'llr_upper', 'games']) {
        expect(Number.isFinite(statistics[key])).toBe(true);
      }
    }
    const test = tw.warden.status(MODEL).models[0]!.statistical_test;
    if (test) expect(Number.isFinite(test.llr)).toBe(true);
    // The next, ordinary evaluation is processed as usual.
    expect((await evaluate(tw, 20, 10, 20)).outcome.kind).not.toBe('busy');
  });
});

describe('statistical mode: the running test is visible', () => {
  it('status shows the test, its LLR, bounds, games, alpha; a passed test is recorded with its time', async () => {
    tw = await start();
    await evaluate(tw, 20, 10, 20);
    let test = tw.warden.status(MODEL).models[0]!.statistical_test!;
    expect(test).toMatchObject({ format: 'trinomial', test: 1, tests_completed: 0, tests_passed: 0 });
    expect(test).toMatchObject({ games: 50, windows: 1, last_passed_at: null, alpha_spent: 0 });
    expect(test.alpha).toBeCloseTo(0.05 / 1.2020569031595942, 12);
    expect(test.llr_upper).toBeCloseTo(Math.log(0.95 / test.alpha!), 12);
    expect(test.llr).toBeLessThan(0);

    // Healthy windows until the version passes its first test.
    for (let i = 0; i < 40 && test.tests_passed === 0; i += 1) {
      await evaluate(tw, 22, 10, 18);
      test = tw.warden.status(MODEL).models[0]!.statistical_test!;
    }
    expect(test).toMatchObject({ test: 2, tests_completed: 1, tests_passed: 1, games: 0, windows: 0 });
    expect(test.last_passed_at).toBe(new Date(tw.clock.now()).toISOString());
    expect(test.alpha_spent).toBeCloseTo(0.05 / 1.2020569031595942, 12);
    expect(tw.registry.applied).toHaveLength(0);

    const view = tw.warden.status();
    expect(formatStatus(view)).toMatch(
      /MODEL\s+TEST\s+FORMAT\s+LLR\s+BOUNDS\s+GAMES\s+WINDOWS\s+PASSED\s+ALPHA\s+ALPHA SPENT\nhex8_2p\s+2\s+trinomial\s+0\.00\s+-2\.99\.\.5\.21\s+0\s+0\s+1\s+0\.52%\s+4\.16%/,
    );
    expect(formatModel(view.models[0]!, undefined)).toMatch(
      /statistical test:\s+test 2 \(trinomial\): LLR 0\.00 within -2\.99\.\.5\.21 after 0 games in 0 windows, passed 1 of 1 \(last \S+Z\), alpha 0\.52% \(spent before: 4\.16%\)/,
    );
  });
});

describe('statistical mode: the pure model step with extreme counts (issue 8, finding 2)', () => {
  const LIMIT = 1_000_000_000;
  const policy = modelPolicyFrom(parseConfig({ detection: { mode: 'statistical' } }));
  const promoted = (): ModelContext => {
    let context = initialModelContext(MODEL, MODEL);
    for (const version of ['v1', 'v2']) {
      context = stepModel(
        'healthy',
        context,
        { type: 'PROMOTED', at: 0, version, elo: 1500 },
        policy,
      ).context;
    }
    return context;
  };
  const count = fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: 60 }),
    fc.integer({ min: 0, max: LIMIT }),
    fc.constantFrom(LIMIT, 5_000_000, 4_000_000, 25_000_000),
  );
  const trinomial = fc
    .tuple(count, count, count)
    .filter(([w, d, l]) => w + d + l > 0 && w + d + l <= LIMIT)
    .map(([wins, draws, losses]) => ({ outcomes: { wins, draws, losses }, games: wins + draws + losses }));
  const pentanomial = fc
    .tuple(count, count, count, count, count)
    .map((r) => r.map((n) => Math.floor(n / 2)) as [number, number, number, number, number])
    .filter((r) => r.some((n) => n > 0) && r.reduce((a, b) => a + b, 0) <= LIMIT / 2)
    .map((r) => ({ outcomes: { pentanomial: r }, games: 2 * r.reduce((a, b) => a + b, 0) }));

  it('the 5,000,000-win evaluation steps without an exception and with finite statistics', () => {
    const step = stepModel(
      'healthy',
      promoted(),
      {
        type: 'EVALUATED',
        at: 1,
        metrics: {},
        gamesPlayed: 5_000_000,
        outcomes: { wins: 5_000_000, draws: 0, losses: 0 },
      },
      policy,
    );
    expect(step.outcome?.kind).toBe('healthy');
    expect(Number.isFinite(step.context.sprt?.llr)).toBe(true);
  });

  it('property: any sequence of schema-valid windows steps without an exception; statistics stay finite', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(trinomial, pentanomial), { minLength: 1, maxLength: 5 }), (windows) => {
        let context = promoted();
        let state: ModelStateName = 'healthy';
        for (const [i, w] of windows.entries()) {
          if (state === 'rollingBack') break;
          const step = stepModel(
            state,
            context,
            {
              type: 'EVALUATED',
              at: 1000 * (i + 1),
              metrics: {},
              gamesPlayed: w.games,
              outcomes: w.outcomes,
            },
            policy,
          );
          for (const event of step.publish) {
            if (event.type !== 'REGRESSION_DETECTED') continue;
            const s = event.payload.statistics!;
            for (const v of [s.elo, s.elo_lower, s.elo_upper, s.llr, s.llr_lower, s.llr_upper]) {
              expect(Number.isFinite(v)).toBe(true);
            }
          }
          expect(Number.isFinite(step.context.sprt?.llr ?? 0)).toBe(true);
          context = step.context;
          state = step.target ?? state;
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('statistical mode over real HTTP', () => {
  let service: TestService | undefined;
  afterEach(async () => {
    await service?.close();
    service = undefined;
  });

  it('the 5,000,000-win evaluation is answered 200, and GET /v1/models/:id shows the running test', async () => {
    service = await startTestService({ detection: { mode: 'statistical' } });
    await promoteTwo(service);
    const extreme = await service.api(
      'POST',
      '/v1/evaluations',
      { model_id: MODEL, games_played: 5_000_000, wins: 5_000_000, draws: 0, losses: 0 },
      PRODUCER_TOKEN,
    );
    expect(extreme.status).toBe(200);
    const window = await service.api(
      'POST',
      '/v1/evaluations',
      { model_id: MODEL, games_played: 50, pentanomial: [3, 6, 8, 5, 3] },
      PRODUCER_TOKEN,
    );
    expect(window.status).toBe(200);
    const reply = await service.api('GET', `/v1/models/${MODEL}`, undefined, OPERATOR_TOKEN);
    expect(reply.status).toBe(200);
    // The 5M-win window passed test 1 at once; the pentanomial window restarted test 2 in its format.
    expect(reply.body.model.statistical_test).toMatchObject({
      format: 'pentanomial',
      test: 2,
      tests_completed: 1,
      tests_passed: 1,
      games: 50,
      windows: 1,
    });
    expect(Number.isFinite(reply.body.model.statistical_test.llr)).toBe(true);
  });
});
