import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import type { BusMessage } from '../../src/actors/ports.ts';
import { parseConfig } from '../../src/config/load.ts';
import { WardenError, type ErrorCode } from '../../src/domain/errors.ts';
import { createWarden, type Warden } from '../../src/warden.ts';

/**
 * Bad input through the real facade (embedded bus and SQLite store in a temp dir, a manual clock): each
 * input throws a WardenError naming the field, what was expected and what was received, and none of them
 * changes anything, in memory or on disk.
 */

let dir: string;
let warden: Warden;
let rejected: Array<{ kind: string; error: WardenError }>;
/** Everything published on the bus after the setup. */
let published: BusMessage[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-inputs-'));
  rejected = [];
  warden = await createWarden(parseConfig({ dataDir: dir }), {
    clock: new ManualClock(),
    onRejected: (kind, error) => rejected.push({ kind, error }),
  });
  // Some state worth protecting: hex8_2p rolled back (history, paused training), square8_2p regressed.
  await warden.promote({ model_id: 'hex8_2p', version: 'v1', elo: 1500 });
  await warden.promote({ model_id: 'hex8_2p', version: 'v2', elo: 1520 });
  await warden.evaluate({ model_id: 'hex8_2p', current_elo: 1400, baseline_elo: 1520, games_played: 100 });
  await warden.promote({ model_id: 'square8_2p_v7', elo: 1600 });
  await warden.evaluate({ model_id: 'square8_2p', current_elo: 1575, baseline_elo: 1600, games_played: 100 });
  await warden.idle();
  published = [];
  warden.bus.subscribe('warden.>', (message) => {
    published.push(message);
  });
});

afterEach(async () => {
  await warden.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** What the service holds: the status, the rollback history, and the persisted actors and outbox. */
async function everything(w: Warden) {
  return {
    status: w.status(),
    history: await w.history({ limit: 1000 }),
    models: await w.store.loadActors('model'),
    trainings: await w.store.loadActors('training'),
    outbox: await w.store.pendingOutbox(1000),
  };
}

async function rejection(promise: Promise<unknown>): Promise<WardenError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(WardenError);
    return error as WardenError;
  }
  throw new Error('expected the call to reject, but it resolved');
}

/** Runs a bad call and checks that it rejects and that nothing changed, nor was anything published. */
async function rejectsWithoutChange(call: (w: Warden) => Promise<unknown>): Promise<WardenError> {
  const before = await everything(warden);
  const error = await rejection(call(warden));
  await warden.idle();
  expect(published).toEqual([]);
  expect(await everything(warden)).toEqual(before);
  return error;
}

const evaluation = { model_id: 'square8_2p', current_elo: 1590, baseline_elo: 1600, games_played: 100 };

describe('the setup holds the state the bad inputs must not touch', () => {
  it('one rollback in the history, a paused config, a model in cooldown, a regressed model', async () => {
    const { status, history } = await everything(warden);
    expect(
      status.models.map((m) => [m.model_id, m.state, m.production_version, m.consecutive_regressions]),
    ).toEqual([
      ['hex8_2p', 'cooldown', 'v1', 0],
      ['square8_2p', 'regressed', 'v7', 1],
    ]);
    expect(status.training.map((t) => [t.config_key, t.status])).toEqual([['hex8_2p', 'paused']]);
    expect(history.rollbacks).toHaveLength(1);
  });
});

describe('bad input: a WardenError naming the field, expected and received; nothing changes', () => {
  const cases: Array<{
    name: string;
    call: (w: Warden) => Promise<unknown>;
    code: ErrorCode;
    message: RegExp;
  }> = [
    {
      name: 'a string where a number belongs',
      call: (w) => w.evaluate({ ...evaluation, current_elo: '1500' }),
      code: 'invalid_input',
      message: /current_elo: .*expected number, received string/,
    },
    {
      name: 'NaN',
      call: (w) => w.evaluate({ ...evaluation, current_elo: Number.NaN }),
      code: 'invalid_input',
      message: /current_elo: .*expected number, received NaN/,
    },
    {
      name: 'Infinity',
      call: (w) => w.evaluate({ ...evaluation, baseline_elo: Number.POSITIVE_INFINITY }),
      code: 'invalid_input',
      message: /baseline_elo: .*expected number, received Infinity/,
    },
    {
      name: 'negative games',
      call: (w) => w.evaluate({ ...evaluation, games_played: -3 }),
      code: 'invalid_input',
      message: /games_played: .*expected number to be >=0, received -3/,
    },
    {
      name: 'fractional games',
      call: (w) => w.evaluate({ ...evaluation, games_played: 2.5 }),
      code: 'invalid_input',
      message: /games_played: .*expected int/,
    },
    {
      name: 'a missing games_played',
      call: (w) => w.evaluate({ model_id: 'square8_2p', current_elo: 1400, baseline_elo: 1600 }),
      code: 'invalid_input',
      message: /games_played: required: expected number, received nothing/,
    },
    {
      name: 'a huge Elo',
      call: (w) => w.evaluate({ ...evaluation, current_elo: 1e9 }),
      code: 'invalid_input',
      message: /current_elo: .*expected number to be <=100000, received 1000000000/,
    },
    {
      name: 'a huge games_played',
      call: (w) => w.evaluate({ ...evaluation, games_played: 1e12 }),
      code: 'invalid_input',
      message: /games_played: .*expected number to be <=1000000000, received 1000000000000/,
    },
    {
      name: 'a win rate above 1',
      call: (w) => w.evaluate({ ...evaluation, current_win_rate: 1.5 }),
      code: 'invalid_input',
      message: /current_win_rate: .*expected number to be <=1, received 1\.5/,
    },
    {
      name: 'an unknown field',
      call: (w) => w.evaluate({ ...evaluation, elo_delta: -40 }),
      code: 'invalid_input',
      message: /elo_delta: unknown field/,
    },
    {
      name: 'an unknown field on a promotion',
      call: (w) => w.promote({ model_id: 'square8_2p', version: 'v8', elo_rating: 1600 }),
      code: 'invalid_input',
      message: /^invalid promotion: elo_rating: unknown field/,
    },
    {
      name: 'not an object',
      call: (w) => w.evaluate(null),
      code: 'invalid_input',
      message: /\(root\): .*expected object, received null/,
    },
    {
      name: 'a model id that is not a model reference',
      call: (w) => w.evaluate({ ...evaluation, model_id: 'square8 2p' }),
      code: 'invalid_input',
      message: /model_id: expected a model id such as "hex8_2p" or "hex8_2p_v42", received "square8 2p"/,
    },
    {
      name: 'an unknown model in an evaluation',
      call: (w) => w.evaluate({ ...evaluation, model_id: 'go19_2p' }),
      code: 'unknown_model',
      message: /unknown model "go19_2p": no promotion has been recorded for it/,
    },
    {
      name: 'an unknown model in an approval',
      call: (w) => w.approve('go19_2p', { by: 'alice' }),
      code: 'unknown_model',
      message: /unknown model "go19_2p"/,
    },
    {
      name: 'an unknown model in a rejection',
      call: (w) => w.reject('go19_2p', { by: 'alice' }),
      code: 'unknown_model',
      message: /unknown model "go19_2p"/,
    },
    {
      name: 'an unknown model in a rollback',
      call: (w) => w.rollback('go19_2p', { by: 'alice', reason: 'looks bad' }),
      code: 'unknown_model',
      message: /unknown model "go19_2p"/,
    },
    {
      name: 'a command model id that is not a token',
      call: (w) => w.approve('hex8 2p', { by: 'alice' }),
      code: 'invalid_input',
      message: /model_id: expected a single token .*, received "hex8 2p"/,
    },
    {
      name: 'a rollback command without `by`',
      call: (w) => w.rollback('square8_2p', { reason: 'looks bad' }),
      code: 'invalid_input',
      message: /^invalid rollback command: by: required: expected string, received nothing/,
    },
    {
      name: 'a rollback to a version never promoted',
      call: (w) => w.rollback('hex8_2p', { by: 'alice', reason: 'looks bad', to_version: 'v9' }),
      code: 'unknown_version',
      message: /expected one of the promoted versions \(v1, v2\), received "v9"/,
    },
    {
      name: 'an approval with nothing pending',
      call: (w) => w.approve('square8_2p', { by: 'alice' }),
      code: 'no_pending_approval',
      message: /model "square8_2p" has no pending approval \(it is regressed\)/,
    },
    {
      name: 'a missing version on a promotion',
      call: (w) => w.promote({ model_id: 'square8_2p', elo: 1700 }),
      code: 'invalid_input',
      message: /version: expected a version, .*received model_id "square8_2p" and no version/,
    },
    {
      name: 'a promotion with a bad Elo',
      call: (w) => w.promote({ model_id: 'square8_2p', version: 'v8', elo: 'high' }),
      code: 'invalid_input',
      message: /elo: .*expected number, received string/,
    },
    {
      name: 'wins + draws + losses that do not add up to games_played',
      call: (w) => w.evaluate({ ...evaluation, wins: 40, draws: 10, losses: 40 }),
      code: 'invalid_input',
      message: /games_played: expected wins \+ draws \+ losses \(90\) to equal games_played, received 100/,
    },
    {
      name: 'wins without draws and losses',
      call: (w) => w.evaluate({ ...evaluation, wins: 40 }),
      code: 'invalid_input',
      message: /wins: expected wins, draws and losses together, received only some of them/,
    },
    {
      name: 'a pentanomial that does not add up to games_played',
      call: (w) => w.evaluate({ ...evaluation, pentanomial: [5, 10, 20, 10, 4] }),
      code: 'invalid_input',
      message: /pentanomial: expected 2 x the pair count \(98\) to equal games_played, received 100/,
    },
  ];

  it.each(cases)('$name', async ({ call, code, message }) => {
    const error = await rejectsWithoutChange(call);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(error.retryable).toBe(false);
  });

  it('a good evaluation after all of them is still processed', async () => {
    for (const { call } of cases) await rejection(call(warden));
    await warden.evaluate({ ...evaluation, current_elo: 1570 });
    await warden.idle();
    expect(warden.status('square8_2p').models[0]).toMatchObject({
      state: 'regressed',
      consecutive_regressions: 2,
    });
  });
});

describe('messages a person can read', () => {
  it('NaN', async () => {
    const error = await rejectsWithoutChange((w) => w.evaluate({ ...evaluation, current_elo: Number.NaN }));
    expect(error.message).toMatchInlineSnapshot(
      `"invalid evaluation: current_elo: Invalid input: expected number, received NaN"`,
    );
    expect(error.issues).toMatchInlineSnapshot(`
      [
        "current_elo: Invalid input: expected number, received NaN",
      ]
    `);
  });

  it('several problems at once, each on its own', async () => {
    const error = await rejectsWithoutChange((w) =>
      w.evaluate({ model_id: 7, games_played: -1, current_win_rate: 1.5, current_elo: 'high' }),
    );
    expect(error.issues).toMatchInlineSnapshot(`
      [
        "model_id: Invalid input: expected string, received number",
        "current_elo: Invalid input: expected number, received string",
        "current_win_rate: Too big: expected number to be <=1, received 1.5",
        "games_played: Too small: expected number to be >=0, received -1",
      ]
    `);
  });

  it('a count past every bound: the tightest one, once', async () => {
    const error = await rejectsWithoutChange((w) =>
      w.evaluate({ ...evaluation, games_played: 1e308, current_elo: -1e308 }),
    );
    expect(error.issues).toMatchInlineSnapshot(`
      [
        "current_elo: Too small: expected number to be >=-100000, received -1e+308",
        "games_played: Too big: expected number to be <=1000000000, received 1e+308",
      ]
    `);
  });

  it('a missing version on a promotion', async () => {
    const error = await rejectsWithoutChange((w) => w.promote({ model_id: 'square8_2p' }));
    expect(error.toJSON()).toMatchInlineSnapshot(`
      {
        "code": "invalid_input",
        "issues": [
          "version: expected a version, as "version" or as a "_v<N>" suffix of model_id, received model_id "square8_2p" and no version",
        ],
        "message": "invalid promotion: version: expected a version, as "version" or as a "_v<N>" suffix of model_id, received model_id "square8_2p" and no version",
      }
    `);
  });

  it('inconsistent outcomes', async () => {
    const error = await rejectsWithoutChange((w) =>
      w.evaluate({ ...evaluation, wins: 40, draws: 10, losses: 40 }),
    );
    expect(error.message).toMatchInlineSnapshot(
      `"invalid evaluation: games_played: expected wins + draws + losses (90) to equal games_played, received 100"`,
    );
  });

  it('an unknown model', async () => {
    const error = await rejectsWithoutChange((w) =>
      w.rollback('go19_2p', { by: 'alice', reason: 'looks bad' }),
    );
    expect(error.toJSON()).toMatchInlineSnapshot(`
      {
        "code": "unknown_model",
        "message": "unknown model "go19_2p": no promotion has been recorded for it (publish a promotion first)",
      }
    `);
  });

  it('an unknown field', async () => {
    const error = await rejectsWithoutChange((w) => w.evaluate({ ...evaluation, elo_delta: -40 }));
    expect(error.message).toMatchInlineSnapshot(
      `"invalid evaluation: elo_delta: unknown field (check its spelling; unknown fields are refused)"`,
    );
  });
});

describe('ingest: bus input whose subject names another model', () => {
  it('is rejected with {ok: false}, published on warden.evt.rejected.evaluation and counted; a good message after it is processed', async () => {
    const seen: BusMessage[] = [];
    warden.bus.subscribe('warden.evt.rejected.evaluation', (message) => {
      seen.push(message);
    });
    const before = await everything(warden);

    const bad = { ...evaluation, model_id: 'hex8_2p', current_elo: 1400 };
    const result = await warden.ingest('warden.in.evaluation.square8_2p', bad);
    await warden.idle();

    expect(result).toEqual({
      ok: false,
      error: {
        code: 'invalid_input',
        message: `invalid evaluation: model_id: expected "square8_2p" (the subject's last token), received "hex8_2p"`,
        issues: [`model_id: expected "square8_2p" (the subject's last token), received "hex8_2p"`],
      },
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.subject).toBe('warden.evt.rejected.evaluation');
    expect(seen[0]!.data).toEqual({
      subject: 'warden.in.evaluation.square8_2p',
      error: (result as { error: unknown }).error,
      raw: JSON.stringify(bad),
    });
    expect(rejected.map((r) => [r.kind, r.error.code])).toEqual([['evaluation', 'invalid_input']]);
    // Neither model moved: not the one the subject names, nor the one the payload names.
    expect(await everything(warden)).toEqual(before);

    const good = await warden.ingest('warden.in.evaluation.square8_2p', { ...evaluation, current_elo: 1570 });
    await warden.idle();
    expect(good).toMatchObject({ ok: true });
    expect(warden.status('square8_2p').models[0]).toMatchObject({
      state: 'regressed',
      consecutive_regressions: 2,
    });
    expect(seen).toHaveLength(1);
  });

  it('over the bus: the bad message is rejected and the good one right behind it is not lost', async () => {
    const seen: BusMessage[] = [];
    warden.bus.subscribe('warden.evt.rejected.>', (message) => {
      seen.push(message);
    });
    await warden.bus.publish('warden.in.evaluation.square8_2p', { ...evaluation, model_id: 'hex8_2p' });
    await warden.bus.publish('warden.in.evaluation.square8_2p', { ...evaluation, current_elo: 1570 });
    await warden.idle();

    expect(seen.map((m) => (m.data as { error: { code: string } }).error.code)).toEqual(['invalid_input']);
    expect(warden.status('square8_2p').models[0]).toMatchObject({
      state: 'regressed',
      consecutive_regressions: 2,
    });
    expect(warden.status('hex8_2p').models[0]).toMatchObject({ state: 'cooldown', production_version: 'v1' });
  });

  it('a version folded into model_id still matches the subject token', async () => {
    const result = await warden.ingest('warden.in.evaluation.square8_2p', {
      ...evaluation,
      model_id: 'square8_2p_v7',
      current_elo: 1570,
    });
    await warden.idle();
    expect(result).toMatchObject({ ok: true });
    expect(warden.status('square8_2p').models[0]).toMatchObject({ consecutive_regressions: 2 });
  });

  it('a payload that is not JSON and an unknown model are rejected the same way, with their code', async () => {
    const seen: BusMessage[] = [];
    warden.bus.subscribe('warden.evt.rejected.>', (message) => {
      seen.push(message);
    });
    const before = await everything(warden);

    const notJson = await warden.ingest('warden.in.evaluation.square8_2p', undefined, '{not json');
    const unknown = await warden.ingest('warden.in.evaluation.go19_2p', {
      ...evaluation,
      model_id: 'go19_2p',
    });
    const badPromotion = await warden.ingest('warden.in.promotion.square8_2p', { model_id: 'square8_2p' });
    await warden.idle();

    expect(notJson).toEqual({
      ok: false,
      error: {
        code: 'invalid_input',
        message: 'invalid evaluation: (root): expected a JSON object, received text that is not JSON',
        issues: ['(root): expected a JSON object, received text that is not JSON'],
      },
    });
    expect(unknown).toMatchObject({ ok: false, error: { code: 'unknown_model' } });
    expect(badPromotion).toMatchObject({ ok: false, error: { code: 'invalid_input' } });
    expect(seen.map((m) => [m.subject, (m.data as { raw: string }).raw])).toEqual([
      ['warden.evt.rejected.evaluation', '{not json'],
      ['warden.evt.rejected.evaluation', JSON.stringify({ ...evaluation, model_id: 'go19_2p' })],
      ['warden.evt.rejected.promotion', JSON.stringify({ model_id: 'square8_2p' })],
    ]);
    expect(rejected.map((r) => [r.kind, r.error.code])).toEqual([
      ['evaluation', 'invalid_input'],
      ['evaluation', 'unknown_model'],
      ['promotion', 'invalid_input'],
    ]);
    expect(await everything(warden)).toEqual(before);
  });
});
