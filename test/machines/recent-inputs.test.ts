/**
 * The model's memory of recent input ids (what makes a redelivered input a duplicate), against a reference
 * written the plain way: every id taken is appended, and only the newest RECENT_INPUT_LIMIT are kept. The
 * machine keeps it with one copy per input; this checks that the window, its order and the duplicates it
 * answers are the same, through the actor as the runtime drives it (one event after another).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createActor } from 'xstate';
import { parseConfig } from '../../src/config/load.ts';
import { modelPolicyFrom, RECENT_INPUT_LIMIT } from '../../src/machines/model-policy.ts';
import { createModelMachine } from '../../src/machines/model-machine.ts';
import { rememberedId } from '../../src/machines/remembered-id.ts';

const policy = modelPolicyFrom(parseConfig({ detection: { mode: 'threshold' } }));
const machine = createModelMachine(policy);

describe('recent input ids', () => {
  it('hold the newest RECENT_INPUT_LIMIT ids taken, in order, and answer a repeat of one as a duplicate', () => {
    fc.assert(
      fc.property(
        // A small pool of ids, so that repeats fall both inside and outside the window.
        fc.array(fc.integer({ min: 0, max: 2 * RECENT_INPUT_LIMIT }), {
          maxLength: 4 * RECENT_INPUT_LIMIT,
          size: 'max',
        }),
        (ids) => {
          const actor = createActor(machine, { input: { modelId: 'm', configKey: 'm' } });
          actor.start();
          actor.send({ type: 'PROMOTED', at: 0, version: 'v1', elo: 1500, inputId: 'p' });
          let reference = ['p'];
          ids.forEach((n, i) => {
            // Short ids, and long ones (UUID-like) that the model remembers as their digest.
            const inputId = n % 3 === 0 ? `e${n}` : `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
            const event = {
              type: 'EVALUATED' as const,
              at: i + 1,
              metrics: { currentElo: 1500 },
              gamesPlayed: 100,
              inputId,
            };
            const before = actor.getSnapshot().context;
            actor.send(event);
            const outcome = machine.outcomeOf(event);
            if (reference.includes(inputId)) {
              expect(outcome).toEqual({ kind: 'duplicate', inputId });
              expect(actor.getSnapshot().context).toBe(before);
            } else {
              expect(outcome?.kind).toBe('healthy');
              reference = [...reference, inputId].slice(-RECENT_INPUT_LIMIT);
            }
            // Each context keeps its own list: the one before this input is unchanged by it.
            expect(actor.getSnapshot().context.recentInputIds).toEqual(reference.map(rememberedId));
          });
          actor.stop();
        },
      ),
      { numRuns: 200 },
    );
  });

  it('leave the context they were taken from as it was (the committed snapshot is reverted to)', () => {
    const actor = createActor(machine, { input: { modelId: 'm', configKey: 'm' } });
    actor.start();
    actor.send({ type: 'PROMOTED', at: 0, version: 'v1', elo: 1500 });
    const contexts = [];
    for (let i = 0; i < 2 * RECENT_INPUT_LIMIT; i++) {
      contexts.push(actor.getSnapshot().context);
      actor.send({
        type: 'EVALUATED',
        at: i + 1,
        metrics: { currentElo: 1500 },
        gamesPlayed: 100,
        inputId: `e${i}`,
      });
    }
    contexts.forEach((context, i) => {
      expect(context.recentInputIds).toEqual(
        Array.from({ length: i }, (_, k) => `e${k}`).slice(-RECENT_INPUT_LIMIT),
      );
    });
    actor.stop();
  });
});
