import { describe, expect, it } from 'vitest';
import type { StateStore } from '../../src/actors/ports.ts';
import { interceptCommits } from '../support/commit-interceptor.ts';
import type { RuntimeObserver } from '../../src/actors/runtime.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const nats = useSharedNats();

/** Counts the commits of one model's state; the first `failFirst` of them that hold several inputs fail. */
function countingStore(
  inner: StateStore,
  key: string,
  counts: { commits: number; failed: number },
  failFirst = 0,
): StateStore {
  return interceptCommits(inner, (part) => {
    if (part.actors[0]?.key !== key) return null;
    if (part.timeline && part.timeline.length > 1 && counts.failed < failFirst) {
      counts.failed++;
      return new Error('NATS went away mid-commit');
    }
    counts.commits++;
    return null;
  });
}

/** Promotions v1..vN of one model, published before Warden starts: a backlog its intake takes in groups. */
async function backlog(prefix: string, model: string, n: number): Promise<void> {
  for (let v = 1; v <= n; v++) {
    await nats.client.publish(`${prefix}.in.promotion.${model}`, {
      event_id: `${model}-p${v}`,
      model_id: `${model}_v${v}`,
      elo: 1500 + v,
    });
  }
}

/** Creates the streams (Warden makes them on start), so that a backlog can wait there. */
async function makeStreams(prefix: string): Promise<void> {
  const w = await startNatsWarden(nats.server.url, { config: { nats: { prefix } } });
  await w.stop();
}

const versions = (n: number, skip: number[] = []) =>
  Array.from({ length: n }, (_, i) => `v${i + 1}`).filter((v) => !skip.includes(Number(v.slice(1))));

async function acknowledgedAll(prefix: string): Promise<void> {
  const stream = `${prefix.toUpperCase()}_IN`;
  const last = (await nats.client.jsm.streams.info(stream)).state.last_seq;
  await eventually(async () => {
    const info = await nats.client.jsm.consumers.info(stream, `${prefix}_inputs`);
    expect(info.ack_floor.stream_seq).toBe(last);
    expect(info.num_ack_pending).toBe(0);
  });
}

describe('NATS mode: the waiting inputs of a model committed together (group commit)', () => {
  it('applies a backlog in order, once each, with fewer writes than inputs', async () => {
    const prefix = 'gc1';
    await makeStreams(prefix);
    await backlog(prefix, 'gm', 45);
    const counts = { commits: 0, failed: 0 };
    await using w = await startNatsWarden(nats.server.url, {
      config: { nats: { prefix } },
      wrapStore: (store) => countingStore(store, 'gm', counts),
    });
    await eventually(() =>
      expect(w.warden.status('gm').models[0]?.versions.map((v) => v.version)).toEqual(versions(45)),
    );
    await w.settled();
    await acknowledgedAll(prefix);
    expect(counts.commits).toBeLessThan(45);
  });

  it('commits a backlog spread over many models in groups too, not about once per input', async () => {
    // Inputs of 40 models interleaved, as a fleet's arrive: one pull brings each model a few. Every one of
    // them waits in its model's lane before any lane starts, so a free lane takes them all as one group.
    const prefix = 'gc4';
    const models = Array.from({ length: 40 }, (_, m) => `fm${m}`);
    await makeStreams(prefix);
    for (let v = 1; v <= 12; v++) {
      await Promise.all(
        models.map((model) =>
          nats.client.publish(`${prefix}.in.promotion.${model}`, {
            event_id: `${model}-p${v}`,
            model_id: `${model}_v${v}`,
            elo: 1500 + v,
          }),
        ),
      );
    }
    let writes = 0;
    await using w = await startNatsWarden(nats.server.url, {
      config: { nats: { prefix } },
      wrapStore: (store) =>
        interceptCommits(store, (part) => {
          if (part.actors[0]?.kind === 'model') writes++;
          return null;
        }),
    });
    await eventually(() => {
      for (const model of models)
        expect(w.warden.status(model).models[0]?.versions.map((v) => v.version)).toEqual(versions(12));
    });
    await w.settled();
    await acknowledgedAll(prefix);
    // 480 inputs. Taken one slice at a time, each free lane started with its first input alone: 200 writes
    // here, and about 0.7 per input in bench:nats. Grouped: 40 to 48 here, about one per model.
    expect(writes).toBeLessThan(120);
  });

  it('fails a whole group when its commit fails, and applies every input again, in order, once each', async () => {
    const prefix = 'gc2';
    await makeStreams(prefix);
    await backlog(prefix, 'gm', 45);
    const counts = { commits: 0, failed: 0 };
    await using w = await startNatsWarden(nats.server.url, {
      config: { nats: { prefix } },
      hooks: { retry: { maxDeliveries: 3, baseDelayMs: 20, maxDelayMs: 50 } },
      wrapStore: (store) => countingStore(store, 'gm', counts, 1),
    });
    await eventually(() =>
      expect(w.warden.status('gm').models[0]?.versions.map((v) => v.version)).toEqual(versions(45)),
    );
    await w.settled();
    await acknowledgedAll(prefix);
    expect(counts.failed).toBe(1);
    expect(await nats.client.stored(`${prefix}.evt.dead_letter.>`, `${prefix.toUpperCase()}_EVENTS`)).toEqual(
      [],
    );
  });

  it('fails the inputs handed over with one that fails for a reason of its own; they come again in order, and it goes to the dead letter', async () => {
    const prefix = 'gc3';
    await makeStreams(prefix);
    await backlog(prefix, 'gm', 40);
    // A bug in processing one input (v13): its step throws, as a machine bug would.
    const observer: RuntimeObserver = {
      outcome: (_kind, key, _event, outcome) => {
        if (key === 'gm' && outcome.kind === 'promoted' && outcome.version === 'v13')
          throw new Error('a bug in the step');
      },
    };
    await using w = await startNatsWarden(nats.server.url, {
      config: { nats: { prefix } },
      hooks: { retry: { maxDeliveries: 3, baseDelayMs: 20, maxDelayMs: 50 } },
      observer,
    });
    await eventually(() =>
      expect(w.warden.status('gm').models[0]?.versions.map((v) => v.version)).toEqual(versions(40, [13])),
    );
    await w.settled();
    await acknowledgedAll(prefix);
    const dead = await nats.client.stored(`${prefix}.evt.dead_letter.>`, `${prefix.toUpperCase()}_EVENTS`);
    expect(dead.map((d) => (d.data as { raw: string }).raw)).toEqual([expect.stringContaining('gm_v13')]);
  });
});
