/**
 * Issue 14: the deadline index of actors that are not resident. Against a plain list of deadlines, under
 * any sequence of sets, deletions and clock moves: every actor whose current deadline has passed is due
 * exactly once, never before its deadline, and nothing else is.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { DeadlineIndex } from '../../src/actors/deadline-index.ts';

type Op =
  | { kind: 'set'; id: number; in: number | null }
  | { kind: 'delete'; id: number }
  | { kind: 'advance'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('set' as const),
    id: fc.nat(20),
    in: fc.option(fc.integer({ min: -50, max: 5_000 }), { freq: 5 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), id: fc.nat(20) }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 3_000 }) }),
);

describe('deadline index', () => {
  it('wakes each actor once its current deadline has passed, never early, and only for the deadline it holds', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: -3, max: 3 }), (ops, skew) => {
        // Platform timers fire early or late by a few ms: the index must never wake anything early.
        const clock = new ManualClock(0, { skew: (delay) => (delay > 5 ? skew : 0) });
        const woken: Array<{ id: string; at: number }> = [];
        const index = new DeadlineIndex(clock, (id) => woken.push({ id, at: clock.now() }));
        const expected = new Map<string, number>();
        const check = (afterAdvance: boolean) => {
          for (const w of woken.splice(0)) {
            const deadline = expected.get(w.id);
            expect(deadline, `${w.id} woken without a deadline`).toBeDefined();
            expect(w.at, `${w.id} woken early`).toBeGreaterThanOrEqual(deadline!);
            expected.delete(w.id);
          }
          // Once time has moved, anything past due by more than a late timer's skew and not woken is a miss.
          for (const [id, at] of afterAdvance ? expected : []) {
            expect(at > clock.now() - 4, `${id} due at ${at}, not woken by ${clock.now()}`).toBe(true);
          }
          expect(index.size).toBe(expected.size);
        };
        for (const o of ops) {
          const id = `model:${'id' in o ? o.id : 0}`;
          if (o.kind === 'set') {
            const at = o.in === null ? null : clock.now() + o.in;
            index.set(id, at);
            if (at === null) expected.delete(id);
            else expected.set(id, at);
          } else if (o.kind === 'delete') {
            index.delete(id);
            expected.delete(id);
          } else {
            clock.advance(o.ms);
          }
          check(o.kind === 'advance');
        }
        clock.advance(10_000);
        check(true);
        expect(expected.size).toBe(0);
        index.stop();
      }),
      { numRuns: 300 },
    );
  });
});
