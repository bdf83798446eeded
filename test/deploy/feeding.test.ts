import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvaluationInputSchema, METADATA_LIMITS, PromotionInputSchema } from '../../src/domain/events.ts';
import { PRODUCER_TOKEN, promoteTwo, startTestService, type TestService } from '../http/support.ts';

let t: TestService;
const published: Array<{ subject: string; data: Record<string, unknown> }> = [];

beforeAll(async () => {
  t = await startTestService({ models: { sq9_4p: { configKey: 'sq9' } } });
  t.service.warden.bus.subscribe('warden.evt.>', (m) => {
    published.push({ subject: m.subject, data: m.data as Record<string, unknown> });
  });
});
afterAll(async () => {
  await t.close();
});

describe('metadata on inputs', () => {
  it('is carried into every event the input causes, and nowhere else', async () => {
    await promoteTwo(t);
    const metadata = { run_id: 'run-2026-11-26-17', host: 'gpu-node-07', 'git.sha': 'a1b2c3d' };
    const reply = await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'hex8_2p', current_elo: 1400, games_played: 200, metadata },
      PRODUCER_TOKEN,
    );
    expect(reply.status).toBe(200);
    await t.service.warden.idle();
    const caused = published.filter((e) => e.data.metadata !== undefined);
    expect(caused.map((e) => e.subject)).toEqual([
      'warden.evt.regression_detected.hex8_2p',
      'warden.evt.regression_critical.hex8_2p',
      'warden.evt.alert.hex8_2p',
    ]);
    for (const e of caused) expect(e.data.metadata).toEqual(metadata);
    // The rollback that follows is its own step: no metadata, and none leaks into later events.
    expect(
      published.find((e) => e.subject === 'warden.evt.promotion_rolled_back.hex8_2p')?.data.metadata,
    ).toBe(undefined);
  });

  it('is bounded: too many fields, long values, odd names and non-strings are refused with what was expected', async () => {
    const base = { model_id: 'hex8_2p', current_elo: 1500, games_played: 10 };
    const cases: Array<[unknown, RegExp]> = [
      [
        Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])),
        /expected at most 16 fields/,
      ],
      [{ run: 'x'.repeat(513) }, /expected a string of at most 512 characters/],
      [{ 'has space': 'x' }, /expected a field name of 1 to 64 letters/],
      [{ ['k'.repeat(65)]: 'x' }, /expected a field name of 1 to 64 letters/],
      [{ n: 42 }, /metadata\.n: .*expected string, received number/],
      [['a'], /metadata: .*expected record, received array/],
    ];
    for (const [metadata, message] of cases) {
      const reply = await t.api('POST', '/v1/evaluations', { ...base, metadata }, PRODUCER_TOKEN);
      expect(reply.status, JSON.stringify(metadata).slice(0, 80)).toBe(400);
      expect(JSON.stringify(reply.body.error)).toMatch(message);
    }
  });

  it('accepts exactly what the limits allow, whatever the strings hold', () => {
    const name = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
    const value = fc.string({ maxLength: METADATA_LIMITS.valueLength, unit: 'binary' });
    fc.assert(
      fc.property(fc.dictionary(name, value, { maxKeys: METADATA_LIMITS.fields }), (metadata) => {
        const input = { model_id: 'hex8_2p', games_played: 1, metadata };
        expect(EvaluationInputSchema.safeParse(input).success).toBe(true);
        expect(PromotionInputSchema.safeParse({ model_id: 'hex8_2p_v3', metadata }).success).toBe(true);
      }),
    );
  });
});

describe('"may I train?" for a config key Warden has never seen', () => {
  it('says known: false (still may_train: true), and known: true for keys of models or the configuration', async () => {
    const typo = await t.api('GET', '/v1/training/hex8_2pp');
    expect(typo.body).toEqual({
      config_key: 'hex8_2pp',
      status: 'running',
      may_train: true,
      known: false,
      reason: null,
      by: null,
      since: null,
      auto_resume_at: null,
    });
    expect((await t.api('GET', '/v1/training/sq9')).body.known).toBe(true);
    // hex8_2p's training config was paused by the rollback above: known, and no.
    expect((await t.api('GET', '/v1/training/hex8_2p')).body).toMatchObject({
      known: true,
      may_train: false,
    });
    await promoteTwo(t, 'go9');
    expect((await t.api('GET', '/v1/training/go9')).body).toMatchObject({ known: true, may_train: true });
  });
});
