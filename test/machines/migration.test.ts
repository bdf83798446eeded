/**
 * Snapshots persisted by the previous machines (model.v1: one step function behind guards named leadsTo)
 * restore into today's, in each of the six model states, and carry on: test/fixtures holds one snapshot per
 * state, written by that code through the real runtime.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { parseConfig } from '../../src/config/load.ts';
import { migrateSnapshot, type StoredSnapshot } from '../../src/machines/migrations.ts';
import { createModelMachine, MODEL_MACHINE_ID } from '../../src/machines/model-machine.ts';
import { modelPolicyFrom } from '../../src/machines/model-policy.ts';
import { MODEL_STATES, type ModelContext } from '../../src/machines/model-types.ts';
import { SqliteStore } from '../../src/embedded/sqlite-store.ts';
import { makeDataDir, startTestWarden } from '../support/test-warden.ts';

const fixtures = JSON.parse(
  readFileSync(new URL('../fixtures/model.v1-snapshots.json', import.meta.url), 'utf8'),
) as Record<string, { machine: string; snapshot: { value: string; context: ModelContext } }>;

describe('model.v1 snapshots restore into model.v2', () => {
  it('the fixtures hold one snapshot of the old machine per state', () => {
    expect(Object.keys(fixtures).sort()).toEqual([...MODEL_STATES].sort());
    for (const stored of Object.values(fixtures)) expect(stored.machine).toBe('model.v1');
  });

  for (const state of MODEL_STATES) {
    it(`${state}: migrated, restored in the same state with the same context, and it takes the next event`, () => {
      const stored = fixtures[state]!;
      const migrated = migrateSnapshot(stored as unknown as StoredSnapshot, MODEL_MACHINE_ID)!;
      expect(migrated.machine).toBe(MODEL_MACHINE_ID);
      const machine = createModelMachine(
        modelPolicyFrom(
          parseConfig({ detection: { mode: 'threshold' }, approval: { requireForSevere: true } }),
        ),
      );
      const actor = createActor(machine, {
        snapshot: migrated.snapshot as never,
        input: { modelId: stored.snapshot.context.modelId, configKey: stored.snapshot.context.configKey },
      });
      actor.start();
      expect(actor.getSnapshot().value).toBe(state);
      expect(actor.getSnapshot().context).toEqual({ ...stored.snapshot.context, deferred: [] });
      // It carries on: a promotion is taken (or kept for after the rollback in flight).
      const event = { type: 'PROMOTED' as const, at: Date.UTC(2027, 0, 1), version: 'v77', elo: 1500 };
      actor.send(event);
      expect(machine.outcomeOf(event)?.kind).toBe(state === 'rollingBack' ? 'deferred' : 'promoted');
      actor.stop();
    });
  }

  it('the runtime restores a store written by the old machines', async () => {
    const dir = await makeDataDir();
    const store = new SqliteStore(`${dir}/warden.db`);
    await store.commit({
      // One model per state, named after it.
      actors: Object.entries(fixtures).map(([state, stored]) => ({
        kind: 'model' as const,
        key: state,
        snapshot: {
          ...stored,
          snapshot: {
            ...stored.snapshot,
            context: { ...stored.snapshot.context, modelId: state, configKey: state },
          },
        },
        revision: 0,
      })),
      outbox: [],
      history: [],
    });
    await store.close();
    const t = await startTestWarden({ detection: { mode: 'threshold' } }, { dir });
    try {
      const states = Object.fromEntries(t.warden.status().models.map((m) => [m.model_id, m.state]));
      for (const state of MODEL_STATES) expect(states[state]).toBe(state);
    } finally {
      await t.close();
    }
  });
});

describe('model.v2 snapshots restore into model.v3', () => {
  it('long input ids are remembered as their digest, and a redelivery of one is still a duplicate', () => {
    const machine = createModelMachine(modelPolicyFrom(parseConfig({ detection: { mode: 'threshold' } })));
    const uuid = '6f1c2a8e-52b1-4a4e-9d3e-2f6a1b7c9d0e';
    const short = 'e-17';
    // A model.v2 snapshot: the same as today's, but with the ids as they were sent.
    const writer = createActor(machine, { input: { modelId: 'm', configKey: 'm' } });
    writer.start();
    writer.send({ type: 'PROMOTED', at: 1, version: 'v1', elo: 1500, inputId: short });
    const persisted = writer.getPersistedSnapshot() as unknown as { context: ModelContext };
    writer.stop();
    const stored = {
      machine: 'model.v2',
      snapshot: { ...persisted, context: { ...persisted.context, recentInputIds: [short, uuid] } },
    };
    const migrated = migrateSnapshot(stored as unknown as StoredSnapshot, MODEL_MACHINE_ID)!;
    expect(migrated.machine).toBe('model.v3');
    const ids = (migrated.snapshot!.context as unknown as ModelContext).recentInputIds;
    expect(ids[0]).toBe(short);
    expect(ids[1]).toMatch(/^#[A-Za-z0-9_-]{16}$/);

    const actor = createActor(machine, {
      snapshot: migrated.snapshot as never,
      input: { modelId: 'm', configKey: 'm' },
    });
    actor.start();
    const again = {
      type: 'EVALUATED' as const,
      at: 2,
      metrics: { currentElo: 1500 },
      gamesPlayed: 100,
      inputId: uuid,
    };
    actor.send(again);
    expect(machine.outcomeOf(again)).toEqual({ kind: 'duplicate', inputId: uuid });
    const other = { ...again, inputId: uuid.replace('6f1c', '6f1d') };
    actor.send(other);
    expect(machine.outcomeOf(other)?.kind).toBe('healthy');
    actor.stop();
  });
});
