/**
 * Property-based tests of the whole HTTP input path (issue 8, acceptance): any JSON value, any byte
 * string and any content type as a body of /v1/evaluations or /v1/promotions ends in a clear refusal or
 * its effect: never a crash, never a 500, never a lost good input around it. Good promotions are
 * interleaved with the hostile requests, and each one's effect (the production version) is checked.
 * Every refusal is counted in warden_rejected_inputs_total under bounded labels.
 *
 * Game counts stay small here: extreme counts belong to the statistics' own properties.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OPERATOR_TOKEN,
  PRODUCER_TOKEN,
  parseMetrics,
  startTestService,
  type TestService,
} from './support.ts';

let t: TestService;
let goodVersion = 0;

beforeAll(async () => {
  t = await startTestService();
  for (const model of ['good_model', 'fuzz_model']) {
    for (const version of ['v1', 'v2']) {
      await t.api('POST', '/v1/promotions', { model_id: model, version, elo: 1500 }, PRODUCER_TOKEN);
    }
  }
});
afterAll(async () => {
  await t.close();
});

interface HostileRequest {
  readonly path: '/v1/evaluations' | '/v1/promotions';
  readonly contentType: string | undefined;
  readonly body: string | Uint8Array;
}

const smallCount = fc.oneof(
  fc.integer({ min: 0, max: 2000 }),
  fc.constantFrom(-1, 0.5, 1e10, Number.MAX_SAFE_INTEGER + 2),
);
const hostileNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(-0, 1e308, -1e308, 5e-324),
  fc.string({ maxLength: 5 }),
  fc.constant(null),
  fc.boolean(),
);
const modelId = fc.oneof(
  fc.constantFrom('fuzz_model', 'fuzz_model_v3', 'ghost', '', 'a.b', 'x'.repeat(129), '__proto__'),
  fc.string({ maxLength: 20 }),
);
const timestamp = fc.oneof(
  fc.double(),
  fc.integer({ min: 1, max: 4_000_000_000 }),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  fc.string({ maxLength: 30 }),
);

/** Objects shaped like the inputs, with hostile or missing fields. */
const inputLike = fc.record(
  {
    model_id: modelId,
    version: fc.oneof(fc.constantFrom('v9', 'v1', '', 'v 1'), fc.string({ maxLength: 10 })),
    elo: hostileNumber,
    current_elo: hostileNumber,
    baseline_elo: hostileNumber,
    current_win_rate: hostileNumber,
    games_played: smallCount,
    wins: smallCount,
    draws: smallCount,
    losses: smallCount,
    pentanomial: fc.array(smallCount, { maxLength: 6 }),
    event_id: fc.string({ maxLength: 30 }),
    timestamp,
    extra: fc.jsonValue(),
  },
  { requiredKeys: [] },
);

/** A valid evaluation of fuzz_model: consistent small counts, in-range metrics. */
const validEvaluation = fc
  .record({
    wins: fc.integer({ min: 0, max: 300 }),
    draws: fc.integer({ min: 0, max: 300 }),
    losses: fc.integer({ min: 0, max: 300 }),
    current_elo: fc.integer({ min: 1000, max: 2000 }),
    timestamp: fc.integer({ min: 1, max: 4_000_000_000 }).map((s) => s + 0.25),
  })
  .map((e) => ({ model_id: 'fuzz_model', games_played: e.wins + e.draws + e.losses, ...e }));

const body = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? '') },
  { weight: 3, arbitrary: inputLike.map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: validEvaluation.map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constantFrom('{"model_id": ', '[', 'null', '""', '{"__proto__": {"x": 1}}') },
  { weight: 1, arbitrary: fc.constant(JSON.stringify({ pad: 'x'.repeat(1024 * 1024) })) },
);

const contentType = fc.oneof(
  { weight: 4, arbitrary: fc.constant('application/json') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/octet-stream',
      'multipart/form-data; boundary=x',
      'application/json; charset=latin1',
    ),
  },
  { weight: 1, arbitrary: fc.stringMatching(/^[\x20-\x7e]{0,40}$/) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

const hostileRequest: fc.Arbitrary<HostileRequest> = fc.record({
  path: fc.constantFrom('/v1/evaluations' as const, '/v1/promotions' as const),
  contentType,
  body,
});

async function send(request: HostileRequest): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${PRODUCER_TOKEN}` };
  if (request.contentType !== undefined) headers['content-type'] = request.contentType;
  const response = await fetch(`${t.url}${request.path}`, {
    method: 'POST',
    headers,
    body: request.body,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, text: await response.text() };
}

/** A good promotion with a fresh version; its effect is that version in production. */
async function goodPromotion(): Promise<void> {
  const version = `v${(goodVersion += 1) + 100}`;
  const reply = await t.api(
    'POST',
    '/v1/promotions',
    { model_id: 'good_model', version, elo: 1500 },
    PRODUCER_TOKEN,
  );
  expect(reply.status, reply.text).toBe(200);
  const model = await t.api('GET', '/v1/models/good_model');
  expect(model.body.model.production_version).toBe(version);
}

async function rejectedTotal(): Promise<{ total: number; labels: string[] }> {
  const samples = parseMetrics((await t.api('GET', '/metrics')).text);
  const rejected = [...samples].filter(([name]) => name.startsWith('warden_rejected_inputs_total'));
  return { total: rejected.reduce((sum, [, value]) => sum + value, 0), labels: rejected.map(([n]) => n) };
}

const REFUSALS = new Set([400, 401, 404, 409, 413, 415]);

describe('http properties: the whole input path', () => {
  it('any body, any content type: a clear refusal or its effect, never a 500, no good input lost', async () => {
    let refusals = 0;
    const before = (await rejectedTotal()).total;
    await fc.assert(
      fc.asyncProperty(fc.array(hostileRequest, { minLength: 1, maxLength: 4 }), async (requests) => {
        await goodPromotion();
        for (const request of requests) {
          const reply = await send(request);
          expect(reply.status === 200 || REFUSALS.has(reply.status), `${reply.status} ${reply.text}`).toBe(
            true,
          );
          const parsed = JSON.parse(reply.text) as {
            error?: { code: string; message: string };
            model_id?: string;
            outcome?: { kind: string };
          };
          if (reply.status === 200) {
            expect(parsed.model_id).toEqual(expect.any(String));
            expect(parsed.outcome?.kind).toEqual(expect.any(String));
          } else {
            refusals += 1;
            expect(parsed.error?.code).toEqual(expect.any(String));
            expect(parsed.error?.message.length).toBeGreaterThan(10);
          }
          await goodPromotion();
        }
      }),
      { numRuns: 60 },
    );
    expect((await t.api('GET', '/healthz')).status).toBe(200);
    // Every refusal was counted, under labels from a small fixed set.
    const after = await rejectedTotal();
    expect(after.total - before).toBe(refusals);
    for (const label of after.labels) {
      expect(label).toMatch(
        /^warden_rejected_inputs_total\{kind="(evaluation|promotion)",reason="(invalid_input|unknown_model|unknown_version|unauthorized|forbidden|conflict|no_pending_approval)"\}$/,
      );
    }
  }, 120_000);

  it('any body on any operator command route: a clear answer, never a 500; good promotions keep working', async () => {
    const routes = [
      '/v1/models/fuzz_model/approve',
      '/v1/models/fuzz_model/reject',
      '/v1/models/fuzz_model/rollback',
      '/v1/models/ghost/rollback',
      '/v1/training/fuzz_model/pause',
      '/v1/training/fuzz_model/resume',
    ];
    const commandBody = fc.oneof(
      body,
      fc
        .record(
          {
            by: fc.oneof(fc.string({ maxLength: 300 }), hostileNumber),
            note: fc.oneof(fc.string({ maxLength: 1200 }), hostileNumber),
            reason: fc.oneof(fc.string({ maxLength: 600 }), hostileNumber),
            to_version: fc.oneof(fc.constantFrom('v1', 'v2', 'v9', ''), fc.string({ maxLength: 10 })),
          },
          { requiredKeys: [] },
        )
        .map((v) => JSON.stringify(v)),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), contentType, commandBody, async (path, type, payload) => {
        const headers: Record<string, string> = { authorization: `Bearer ${OPERATOR_TOKEN}` };
        if (type !== undefined) headers['content-type'] = type;
        const response = await fetch(`${t.url}${path}`, {
          method: 'POST',
          headers,
          body: payload,
          signal: AbortSignal.timeout(10_000),
        });
        const text = await response.text();
        expect(response.status === 200 || REFUSALS.has(response.status), `${response.status} ${text}`).toBe(
          true,
        );
        const parsed = JSON.parse(text) as { error?: { code: string; message: string }; state?: string };
        if (response.status === 200) expect(parsed.state).toEqual(expect.any(String));
        else expect(parsed.error?.message.length).toBeGreaterThan(10);
        await t.service.warden.idle();
        await goodPromotion();
      }),
      { numRuns: 80 },
    );
  }, 120_000);

  it('any valid evaluation (small counts) is processed: 200 with an outcome, never a refusal or a 500', async () => {
    await fc.assert(
      fc.asyncProperty(validEvaluation, async (evaluation) => {
        const reply = await t.api('POST', '/v1/evaluations', evaluation, PRODUCER_TOKEN);
        expect(reply.status, reply.text).toBe(200);
        expect(reply.body).toMatchObject({ model_id: 'fuzz_model', outcome: { kind: expect.any(String) } });
      }),
      { numRuns: 100 },
    );
  }, 60_000);
});
