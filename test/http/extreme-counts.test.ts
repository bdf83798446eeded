/**
 * Issue 8, finding 2, over the whole HTTP input path: any schema-valid evaluation, with game counts up to the
 * schema's limit (1e9), all wins, all losses, all draws, or any mix, ends in its effect: a 200, never a 500,
 * the service alive, and the good input after it applied. (It used to throw inside an XState guard and end
 * the process.)
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRODUCER_TOKEN, startTestService, type TestService } from './support.ts';

const MAX = 1_000_000_000;
let t: TestService;
let version = 2;

beforeAll(async () => {
  t = await startTestService();
  for (const v of ['v1', 'v2'])
    await t.api('POST', '/v1/promotions', { model_id: 'huge', version: v, elo: 1500 }, PRODUCER_TOKEN);
});
afterAll(async () => {
  await t.close();
});

const count = fc.oneof(
  fc.constantFrom(0, 1, MAX, MAX - 1, 5_000_000, 4_000_000, 25_000_000),
  fc.integer({ min: 0, max: MAX }),
);

/** Trinomial windows whose total stays within the limit, including every one-sided extreme. */
const trinomial = fc
  .tuple(count, count, count)
  .map(([w, d, l]) => {
    const scale = w + d + l > MAX ? MAX / (w + d + l) : 1;
    const [wins, draws, losses] = [w, d, l].map((x) => Math.floor(x * scale)) as [number, number, number];
    return { wins, draws, losses, games_played: wins + draws + losses };
  })
  .filter((e) => e.games_played > 0);

const pentanomial = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: MAX / 2 })), { minLength: 5, maxLength: 5 })
  .map((p) => {
    const pairs = p.reduce((a, b) => a + b, 0);
    const scale = pairs > MAX / 2 ? MAX / 2 / pairs : 1;
    const scaled = p.map((x) => Math.floor(x * scale)) as [number, number, number, number, number];
    return { pentanomial: scaled, games_played: 2 * scaled.reduce((a, b) => a + b, 0) };
  })
  .filter((e) => e.games_played > 0);

describe('extreme game counts over HTTP', () => {
  it('the reported crashers are judged, not fatal', async () => {
    for (const outcome of [
      { games_played: 5_000_000, wins: 5_000_000, draws: 0, losses: 0 },
      { games_played: 4_000_000, wins: 0, draws: 0, losses: 4_000_000 },
      { games_played: 25_000_000, wins: 0, draws: 25_000_000, losses: 0 },
      { games_played: MAX, wins: MAX, draws: 0, losses: 0 },
    ]) {
      const reply = await t.api('POST', '/v1/evaluations', { model_id: 'huge', ...outcome }, PRODUCER_TOKEN);
      expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    }
    expect((await t.api('GET', '/healthz')).status).toBe(200);
  });

  it('any schema-valid evaluation with extreme counts ends in its effect, and the next good input too', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(trinomial, pentanomial), async (outcome) => {
        const reply = await t.api(
          'POST',
          '/v1/evaluations',
          { model_id: 'huge', ...outcome },
          PRODUCER_TOKEN,
        );
        expect(reply.status, JSON.stringify(reply.body)).not.toBe(500);
        expect([200, 409, 503]).toContain(reply.status);
        // A good input right after is applied: a new version becomes production (unless a rollback keeps it
        // for afterwards, which the answer says).
        version++;
        const promoted = await t.api(
          'POST',
          '/v1/promotions',
          { model_id: 'huge', version: `v${version}`, elo: 1500 },
          PRODUCER_TOKEN,
        );
        expect(promoted.status).toBe(200);
        expect(['promoted', 'deferred']).toContain(promoted.body.outcome.kind);
        await t.service.warden.idle();
      }),
      { numRuns: 150 },
    );
    expect((await t.api('GET', '/healthz')).status).toBe(200);
  });
});
