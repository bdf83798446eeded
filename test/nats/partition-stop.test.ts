/**
 * An orderly stop of an instance taking input partitions: from the moment Warden's handlers go away until
 * the partitions are closed, an input that arrives is given back for the next holder, never refused for want
 * of a handler (it was refused as a bad subject and acknowledged: a good input lost).
 */
import { describe, expect, it } from 'vitest';
import type { CommitBatch, PartResult, StateStore } from '../../src/actors/ports.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const PREFIX = 'pstop';
const nats = useSharedNats({ partitions: { [PREFIX]: 3 } });

/** The commits of `key` wait for the gate: the stop of the instance waits for them. */
function gatedStore(inner: StateStore, key: string, gate: Promise<void>, reached: () => void): StateStore {
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'commitEach') {
        return async (parts: readonly CommitBatch[]): Promise<PartResult[]> => {
          if (parts.some((p) => p.actors[0]?.key === key)) {
            reached();
            await gate;
          }
          return target.commitEach!(parts);
        };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('NATS mode, input partitions: an orderly stop', () => {
  it('gives back an input that arrives while it stops, instead of refusing it', async () => {
    const config = { nats: { prefix: PREFIX, partitions: 3 } };
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held = false;
    const a = await startNatsWarden(nats.server.url, {
      config,
      wrapStore: (store) => gatedStore(store, 'hold', gate, () => (held = true)),
    });
    await nats.client.publish(`${PREFIX}.in.promotion.hold`, { event_id: 'h1', model_id: 'hold_v1' });
    await eventually(() => expect(held).toBe(true));
    // Warden stops: its handlers go away at once, then it waits for the commit in flight.
    const stopping = a.stop();
    await nats.client.publish(`${PREFIX}.in.promotion.other`, { event_id: 'o1', model_id: 'other_v1' });
    release();
    await stopping;
    expect(await nats.client.stored(`${PREFIX}.evt.rejected.>`, `${PREFIX.toUpperCase()}_EVENTS`)).toEqual(
      [],
    );
    await using b = await startNatsWarden(nats.server.url, { config });
    await eventually(() =>
      expect(
        b.warden
          .status()
          .models.map((m) => m.model_id)
          .sort(),
      ).toEqual(['hold', 'other']),
    );
    expect(b.rejected.size).toBe(0);
  });
});
