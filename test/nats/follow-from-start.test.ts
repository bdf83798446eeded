/**
 * An instance follows what the others commit from the moment it starts, loading included: a record that
 * another instance commits while this one loads its actors must reach its copy of that actor. (Seen in the
 * chaos tests: a replacement instance that later took the lease answering status for a model with a copy
 * one commit behind, for good, while the state bucket held the newer state.)
 */
import { describe, expect, it } from 'vitest';
import type { ActorKind, ActorRecord, StateStore } from '../../src/actors/ports.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const nats = useSharedNats();

/**
 * The store, with the runtime's start held after it has read what it loads (the start-up index, or every
 * model actor for a store without one), until `release()`.
 */
function holdingLoad(store: StateStore) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let reached!: () => void;
  const loaded = new Promise<void>((resolve) => (reached = resolve));
  const wrapped = new Proxy(store, {
    get(target, name, receiver) {
      if (name === 'startIndex') {
        return async () => {
          const entries = await target.startIndex!();
          reached();
          await released;
          return entries;
        };
      }
      if (name === 'loadActors') {
        return async (kind: ActorKind): Promise<ActorRecord[]> => {
          const records = await target.loadActors(kind);
          if (kind === 'model') {
            reached();
            await released;
          }
          return records;
        };
      }
      const value = Reflect.get(target, name, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { wrapped, loaded, release, inner: store };
}

describe('an instance that starts while another commits', () => {
  it('takes in what was committed while it loaded its actors', async () => {
    const prefix = 'follow';
    const config = { nats: { prefix } };
    await using first = await startNatsWarden(nats.server.url, { config });
    const publish = (version: number) =>
      nats.client.publish(`${prefix}.in.promotion.m`, {
        event_id: `p${version}`,
        model_id: `m_v${version}`,
        elo: 1500 + version,
      });
    await publish(1);
    await publish(2);
    await first.settled();

    let hold!: ReturnType<typeof holdingLoad>;
    const starting = startNatsWarden(nats.server.url, {
      config,
      wrapStore: (store) => (hold = holdingLoad(store)).wrapped,
    });
    await eventually(() => expect(hold).toBeDefined());
    await hold.loaded; // the second instance has read the model as it was (v2), and is still starting
    await publish(3);
    await first.settled();
    // Its store has the new state by now (its own watch of the bucket)...
    await eventually(async () => {
      const record = await hold.inner.loadActor('model', 'm');
      const context = (record?.snapshot as { snapshot: { context: { productionVersion: string } } }).snapshot
        .context;
      expect(context.productionVersion).toBe('v3');
    });
    hold.release();
    await using second = await starting;
    // ... and so has its copy of the actor, once started.
    await eventually(() => expect(second.warden.status('m').models[0]!.production_version).toBe('v3'));
  });
});
