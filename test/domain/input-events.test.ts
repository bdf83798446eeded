import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { evaluationEvent, promotionEvent } from '../../src/domain/input-events.ts';

const models = new Set(['m1', 'm2']);
const known = (id: string) => models.has(id);

/** The event a payload becomes, or the problem it has, read as the service reads it. */
function read(kind: 'promotion' | 'evaluation', payload: unknown): unknown {
  try {
    return kind === 'promotion'
      ? promotionEvent(payload, 1000, known, {})
      : evaluationEvent(payload, 1000, known);
  } catch (error) {
    return { problem: (error as Error).message, issues: (error as { issues?: unknown }).issues };
  }
}

/** Payloads good and bad for either kind; each drawn object may come again, as the same object. */
const payload = fc.oneof(
  fc.record({
    model_id: fc.constantFrom('m1', 'm2_v3', 'm 1'),
    version: fc.constantFrom('v1', 'v2'),
    elo: fc.integer(),
  }),
  fc.record({
    model_id: fc.constantFrom('m1', 'm2', ''),
    current_elo: fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.constant('x')),
    games_played: fc.integer({ min: -1, max: 500 }),
  }),
  fc.constantFrom(null, 7, 'text', [], {}),
);

describe('reading input payloads', () => {
  it('reads a payload read just before (by another policy) exactly as a fresh copy of it', () => {
    fc.assert(
      fc.property(
        fc.array(payload, { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom('promotion' as const, 'evaluation' as const)), {
          minLength: 1,
          maxLength: 12,
        }),
        (pool, reads) => {
          const fresh = reads.map(([i, kind]) => read(kind, structuredClone(pool[i % pool.length])));
          reads.forEach(([i, kind], n) => {
            // The live service, then each shadow policy (or the live and the candidate policy of a replay):
            // the same object again, right after; and the next read may be of the same object, as another kind.
            expect(read(kind, pool[i % pool.length])).toEqual(fresh[n]);
            expect(read(kind, pool[i % pool.length])).toEqual(fresh[n]);
          });
        },
      ),
    );
  });
});
