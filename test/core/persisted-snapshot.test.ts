/**
 * Issue 14: the commit path builds each persisted snapshot without XState's walk of the context; what it
 * writes must be exactly what `getPersistedSnapshot()` would have written, in every state.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createActor } from 'xstate';
import { parseConfig } from '../../src/config/load.ts';
import { createModelMachine } from '../../src/machines/model-machine.ts';
import { createTrainingMachine } from '../../src/machines/training-machine.ts';
import { modelPolicyFrom } from '../../src/machines/model-policy.ts';
import { persistedSnapshotOf } from '../../src/actors/persisted.ts';

const config = parseConfig({
  detection: { mode: 'threshold' },
  approval: { requireForSevere: true, timeoutSeconds: 60, onTimeout: 'rollback' },
});

describe('persisted snapshots', () => {
  it('the model actor’s persisted snapshot is byte for byte what XState persists, over any inputs', () => {
    const machine = createModelMachine(modelPolicyFrom(config));
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('promote' as const), version: fc.nat(3) }),
            fc.record({ kind: fc.constant('evaluate' as const), elo: fc.integer({ min: 1300, max: 1600 }) }),
            fc.record({ kind: fc.constant('expire' as const) }),
          ),
          { maxLength: 30 },
        ),
        (steps) => {
          const actor = createActor(machine, { input: { modelId: 'm', configKey: 'm' } });
          actor.start();
          let at = 0;
          const check = () =>
            expect(JSON.stringify(persistedSnapshotOf(actor))).toBe(
              JSON.stringify(actor.getPersistedSnapshot()),
            );
          check();
          for (const s of steps) {
            at += 61_000;
            if (s.kind === 'promote')
              actor.send({ type: 'PROMOTED', at, version: `v${s.version}`, elo: 1500 });
            else if (s.kind === 'evaluate')
              actor.send({
                type: 'EVALUATED',
                at,
                metrics: { currentElo: s.elo },
                gamesPlayed: 100,
                inputId: `i${at}`,
              });
            else {
              const deadline = actor.getSnapshot().context.pending?.deadline;
              if (deadline !== undefined) actor.send({ type: 'APPROVAL_EXPIRED', at, deadline });
            }
            check();
          }
          actor.stop();
        },
      ),
    );
  });

  it('the training actor’s too', () => {
    const actor = createActor(createTrainingMachine({ autoResumeMs: 1000 }), { input: { configKey: 'c' } });
    actor.start();
    const check = () =>
      expect(JSON.stringify(persistedSnapshotOf(actor))).toBe(JSON.stringify(actor.getPersistedSnapshot()));
    check();
    actor.send({ type: 'PAUSE', at: 1, by: 'op', reason: 'test' });
    check();
    expect(actor.getSnapshot().value).toBe('paused');
  });
});
