/**
 * NATS mode reads the actor bucket after it starts taking inputs (KvStore's loadInBackground): an instance
 * over a million models would otherwise take inputs only after about 40 s. Here the read is held after a
 * few values (a watch that waits), and while it is held: inputs and commands reach models not read yet as
 * they are stored (not as new models), a reference that reads as model plus version is read as it would be
 * with every model known, an unknown model is still refused, and lists wait (the API's reads, bounded, are
 * refused as unavailable). Once the read ends, the start-up index applies (a passivated model's approval
 * expires on time), an event a commit left unpublished is published, and everything ends as in a run that
 * read every value first. Also while it is held: inputs of one model handed over together keep their order
 * (their reads differ), a deadline that passed acts before a command, and one model's history answers.
 */
import { rmSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry, type KvWatchOptions } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import { MemoryBus } from '../../src/embedded/memory-bus.ts';
import { createWarden, type Warden } from '../../src/warden.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { startNatsServer, type NatsServer } from '../harness/nats-server.ts';
import { FakeRegistry } from '../support/fake-registry.ts';
import { makeDataDir } from '../support/test-warden.ts';
import { openStore, storeBuckets, type StoreBuckets } from './kv-store-buckets.ts';

const MODELS = 60;
/** Values the held read lets through before it waits. */
const LET_THROUGH = 5;
const CONFIG = {
  detection: { mode: 'threshold' as const },
  approval: { requireForSevere: true, timeoutSeconds: 600 },
  passivateAfterSeconds: 60,
};

let server: NatsServer;
let nc: NatsConnection;
const dirs: string[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc?.close();
  await server?.[Symbol.asyncDispose](); // stops it and removes its store
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * `kv`, whose watches call `started` as each begins, and `each` before each entry they deliver (with how
 * many it makes, and how to stop that watch): a hold, a fault or a count on the store's reads.
 */
function watchedThrough(
  kv: KV,
  hooks: {
    readonly started?: () => void;
    readonly each?: (delivered: number, stop: () => void) => Promise<void> | void;
  },
): KV {
  return new Proxy(kv, {
    get(target, property) {
      if (property !== 'watch') return Reflect.get(target, property, target) as unknown;
      return async (options?: KvWatchOptions) => {
        hooks.started?.();
        const watcher = await target.watch(options);
        let delivered = 0;
        return {
          stop: () => watcher.stop(),
          async *[Symbol.asyncIterator](): AsyncGenerator<KvEntry> {
            for await (const entry of watcher) {
              await hooks.each?.(++delivered, () => watcher.stop());
              yield entry;
            }
          },
        };
      };
    },
  });
}

/** A watch of `kv` that delivers `letThrough` entries, then waits for `release`. */
const heldRead = (kv: KV, letThrough: number, release: Promise<void>): KV =>
  watchedThrough(kv, { each: (delivered) => (delivered > letThrough ? release : undefined) });

async function wardenOver(buckets: StoreBuckets, clock: ManualClock, background: boolean) {
  const dir = await makeDataDir();
  dirs.push(dir);
  const store = await openStore(buckets, { loadInBackground: background });
  const warden = await createWarden(parseConfig({ ...CONFIG, dataDir: dir }), {
    clock,
    registry: new FakeRegistry(true),
    store,
    bus: new MemoryBus(),
  });
  return { warden, store };
}

/**
 * Every model promoted twice and evaluated once, m0 and m1 waiting for an operator's approval; then a model
 * whose id reads as a model plus a version (`s_v9`, created with an explicit version).
 */
async function writeModels(buckets: StoreBuckets, clock: ManualClock): Promise<void> {
  const { warden } = await wardenOver(buckets, clock, false);
  for (let i = 0; i < MODELS; i++) {
    await warden.promote({ event_id: `p${i}.1`, model_id: `m${i}_v1`, elo: 1500 });
    await warden.promote({ event_id: `p${i}.2`, model_id: `m${i}_v2`, elo: 1500 });
  }
  for (let i = 0; i < MODELS; i++) {
    // A severe regression (not a critical one) waits for an operator.
    const severe = i < 2;
    await warden.evaluate({
      event_id: `e${i}`,
      model_id: `m${i}`,
      current_elo: severe ? 1460 : 1495,
      games_played: 200,
    });
  }
  await warden.promote({ event_id: 'ps', model_id: 's_v9', version: 'v1', elo: 1500 });
  await warden.idle();
  await warden.stop();
}

/**
 * An event that model m3's commit left unpublished (its instance died before publishing it): stored with
 * the model, for the start to publish.
 */
async function strand(buckets: StoreBuckets): Promise<void> {
  const entry = (await buckets.kv.get('model.m3'))!;
  const value = entry.json<{ outbox: unknown[] }>();
  value.outbox.push({
    id: 'stranded-1',
    subject: 'warden.evt.alert.m3',
    payload: { event_id: 'stranded-1', model_id: 'm3' },
  });
  await buckets.kv.update('model.m3', JSON.stringify(value), entry.revision);
}

/**
 * Two inputs of `model` handed over in one turn, as the intake hands over a group: a promotion of v3 (it
 * also reads the id `<model>_v3`, in case that is a model), then a critical regression (nothing more to read).
 */
const promotionThenRegression = (warden: Warden, model: string, tag: string) => [
  warden.ingest(`warden.in.promotion.${model}`, { event_id: `${tag}-p`, model_id: `${model}_v3`, elo: 1510 }),
  warden.ingest(`warden.in.evaluation.${model}`, {
    event_id: `${tag}-e`,
    model_id: model,
    current_elo: 1300,
    games_played: 200,
  }),
];

/**
 * Models written (writeModels) in fresh buckets under `name` (then `setUp`), and a Warden over them whose
 * first read is held after LET_THROUGH values (through `wrap`, if given); `body` runs while it is held, and
 * may release it. Then the read is released and the Warden stopped.
 */
async function whileReadHeld(
  name: string,
  body: (held: { warden: Warden; clock: ManualClock; release: () => void }) => Promise<void>,
  options: { setUp?: (buckets: StoreBuckets) => Promise<void>; wrap?: (kv: KV) => KV } = {},
): Promise<void> {
  const buckets = await storeBuckets(nc, name);
  const clock = new ManualClock();
  await writeModels(buckets, clock);
  await options.setUp?.(buckets);
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const kv = options.wrap ? options.wrap(buckets.kv) : buckets.kv;
  const { warden } = await wardenOver({ ...buckets, kv: heldRead(kv, LET_THROUGH, released) }, clock, true);
  try {
    await body({ warden, clock, release });
  } finally {
    release();
    await warden.stop();
  }
}

/** What happens while the read is held (or, in the run to compare with, after it ended). */
async function meanwhile(warden: Warden) {
  const last = `m${MODELS - 1}`;
  const evaluated = await warden.evaluate({
    event_id: 'late-e',
    model_id: last,
    current_elo: 1490,
    games_played: 200,
  });
  const approved = await warden.approve('m0', { by: 'oncall', note: 'read late' });
  // `s_v9` is that model (it exists), not model `s`, version v9: read before the reference is.
  const named = await warden.evaluate({
    event_id: 'late-s',
    model_id: 's_v9',
    current_elo: 1490,
    games_played: 200,
  });
  const promoted = await warden.promote({ event_id: 'late-p', model_id: `m${MODELS - 3}_v3`, elo: 1510 });
  // Two inputs of one model handed over in one turn, as the intake hands over a group: applied in that
  // order, though only the promotion has something to read (the id its version makes; the model is read).
  const pairModel = `m${MODELS - 6}`;
  await warden.readableModel(pairModel);
  const pair = await Promise.all(promotionThenRegression(warden, pairModel, 'pair'));
  await warden.idle();
  const unknown = await warden
    .evaluate({ event_id: 'late-u', model_id: 'nosuch', current_elo: 1490, games_played: 200 })
    .then(
      () => 'accepted',
      (error: Error) => error.name,
    );
  return {
    evaluated: [evaluated.model_id, evaluated.outcome.kind, evaluated.state],
    approved: [approved.outcome.kind, approved.state],
    named: [named.model_id, named.outcome.kind],
    promoted: [promoted.model_id, promoted.version, promoted.outcome.kind],
    pair: pair.map((r) => (r.ok ? (r.result as { outcome: { kind: string } }).outcome.kind : r.error.code)),
    pairEnd: warden.status(pairModel).models.map((m) => [m.state, m.production_version]),
    unknown,
  };
}

/** After the read: every model listed, and the clock past m1's approval deadline (m1 passivated). */
async function afterwards(warden: Warden, clock: ManualClock) {
  await warden.idle();
  const listed = warden.status().models.length;
  for (let step = 0; step < 12; step++) {
    clock.advance(60_000);
    await warden.idle();
  }
  const models = warden.status().models.map((m) => ({
    id: m.model_id,
    state: m.state,
    version: m.production_version,
  }));
  return { listed, m1: models.find((m) => m.id === 'm1')?.state, models };
}

/** Actor values `model.<prefix><i>` (snapshot `{ n: i }`) for i below `count`, one after the other. */
async function putValues(kv: KV, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++)
    await kv.put(
      `model.${prefix}${i}`,
      JSON.stringify({ snapshot: { n: i }, outbox: [], history: [], attention: false }),
    );
}

/** `kv` whose watches are counted in `watches`. */
const counted = (kv: KV, watches: { n: number }): KV =>
  watchedThrough(kv, { started: () => void watches.n++ });

describe('NATS mode reads the actor bucket in the background', () => {
  it('reads it first over a connection of its own, closed once read, then follows it over its own', async () => {
    const buckets = await storeBuckets(nc, 'bgconn');
    await putValues(buckets.kv, 'c', 50);
    const second = await connect({ servers: server.url });
    const own = { n: 0 };
    const other = { n: 0 };
    let done = 0;
    const store = await openStore(
      { ...buckets, kv: counted(buckets.kv, own) },
      {
        loadInBackground: true,
        firstRead: {
          kv: counted(await new Kvm(jetstream(second)).open('bgconn_actors'), other),
          done: () => {
            done++;
            void second.close();
          },
        },
      },
    );
    try {
      await store.whenLoaded();
      expect(store.peekActor('model', 'c49')?.snapshot).toEqual({ n: 49 });
      await eventually(() => expect(done).toBe(1));
      expect(other.n).toBe(1);
      // Followed from then on over the store's own connection: another writer's value comes.
      await buckets.kv.put(
        'model.c0',
        JSON.stringify({ snapshot: { n: 100 }, outbox: [], history: [], attention: false }),
      );
      await eventually(() => expect(store.peekActor('model', 'c0')?.snapshot).toEqual({ n: 100 }));
      expect(own.n).toBe(1);
      expect(second.isClosed()).toBe(true);
    } finally {
      await store.close();
      await second.close();
    }
  });

  it('ends the read once the bucket is quiet when the watch never says nothing is pending', async () => {
    const buckets = await storeBuckets(nc, 'bgnozero');
    await putValues(buckets.kv, 'z', 20);
    // Every entry says one more is pending (nats-server's count is not exact under rewrites, see
    // KvStore.startWatching): only the sweep's look at a quiet bucket can end the read.
    const neverZero = (kv: KV): KV =>
      new Proxy(kv, {
        get(target, property) {
          if (property !== 'watch') return Reflect.get(target, property, target) as unknown;
          return async (options?: KvWatchOptions) => {
            const watcher = await target.watch(options);
            return {
              stop: () => watcher.stop(),
              async *[Symbol.asyncIterator](): AsyncGenerator<KvEntry> {
                for await (const entry of watcher)
                  yield new Proxy(entry, {
                    get: (e, p) => (p === 'delta' ? 1 : (Reflect.get(e, p, e) as unknown)),
                  });
              },
            };
          };
        },
      });
    const store = await openStore(
      { ...buckets, kv: neverZero(buckets.kv) },
      { loadInBackground: true, sweepEveryMs: 50 },
    );
    try {
      await store.whenLoaded();
      for (let i = 0; i < 20; i++) expect(store.peekActor('model', `z${i}`)?.snapshot).toEqual({ n: i });
    } finally {
      await store.close();
    }
  });

  it('reads the rest over its own connection when the first read fails part-way', async () => {
    const buckets = await storeBuckets(nc, 'bgfail');
    await putValues(buckets.kv, 'f', 40);
    // The first read's watch ends in an error after ten entries, and no watch works there again (its
    // connection lost for good, say).
    let lost = false;
    const failing = watchedThrough(buckets.kv, {
      started: () => {
        if (lost) throw new Error('connection closed');
      },
      each: (delivered, stop) => {
        if (delivered <= 10) return;
        stop();
        lost = true;
        throw new Error('connection lost');
      },
    });
    let done = 0;
    const store = await openStore(buckets, {
      loadInBackground: true,
      firstRead: { kv: failing, done: () => done++ },
    });
    try {
      await store.whenLoaded();
      expect(done).toBe(1);
      for (let i = 0; i < 40; i++) expect(store.peekActor('model', `f${i}`)?.snapshot).toEqual({ n: i });
    } finally {
      await store.close();
    }
  });

  it('applies the inputs of one model taken together from its stream in their order, whatever each reads first', async () => {
    const config = { nats: { prefix: 'bgorder' } };
    const writer = await startNatsWarden(server.url, { config });
    for (let i = 0; i < 20; i++) {
      await writer.warden.promote({ event_id: `o${i}.1`, model_id: `o${i}_v1`, elo: 1500 });
      await writer.warden.promote({ event_id: `o${i}.2`, model_id: `o${i}_v2`, elo: 1500 });
    }
    await writer.settled();
    await writer.stop();
    // Waiting in the stream for the next instance, which takes them in one group: a promotion of v3 (it
    // reads the id `o19_v3` as well, in case that is a model), then a critical regression (nothing more).
    const js = jetstream(nc);
    await js.publish(
      'bgorder.in.promotion.o19',
      JSON.stringify({ event_id: 'op', model_id: 'o19_v3', elo: 1500 }),
    );
    await js.publish(
      'bgorder.in.evaluation.o19',
      JSON.stringify({ event_id: 'oe', model_id: 'o19', current_elo: 1300, games_played: 400 }),
    );
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const actors = await new Kvm(jetstream(nc)).open('bgorder_actors');
    const w = await startNatsWarden(server.url, {
      config,
      waitForRead: false,
      hooks: { store: { firstRead: { kv: heldRead(actors, LET_THROUGH, released), done: () => undefined } } },
    });
    try {
      let loaded = false;
      void w.warden.whenLoaded().then(() => (loaded = true));
      await eventually(async () =>
        expect((await w.warden.history({ model_id: 'o19' })).rollbacks).toMatchObject([
          { outcome: 'rolled_back', from_version: 'v3', to_version: 'v2' },
        ]),
      );
      expect(loaded).toBe(false);
    } finally {
      release();
      await w.stop();
    }
  });

  it('fails the inputs handed over behind one whose read failed, so that they come again in order', async () => {
    const model = `m${MODELS - 7}`;
    // The read of the id the promotion's version makes fails once (NATS away for a moment).
    let failures = 0;
    const flaky = (kv: KV): KV =>
      new Proxy(kv, {
        get(target, property) {
          if (property !== 'get') return Reflect.get(target, property, target) as unknown;
          return (key: string) =>
            key === `model.${model}_v3` && failures++ === 0
              ? Promise.reject(new Error('no answer'))
              : target.get(key);
        },
      });
    await whileReadHeld(
      'bgfailread',
      async ({ warden }) => {
        await warden.readableModel(model);
        const pair = () => Promise.allSettled(promotionThenRegression(warden, model, 'f'));
        const first = await pair();
        expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
        expect(first.map((r) => (r as PromiseRejectedResult).reason.code)).toEqual([
          'unavailable',
          'unavailable',
        ]);
        await warden.idle();
        expect(warden.status(model).models[0]).toMatchObject({ state: 'healthy', production_version: 'v2' });
        // Taken again, in order: the promotion, then the regression of v3.
        const again = await pair();
        expect(again.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
        await warden.idle();
        expect((await warden.history({ model_id: model })).rollbacks).toMatchObject([
          { from_version: 'v3', to_version: 'v2' },
        ]);
      },
      { wrap: flaky },
    );
  });

  it('lets a deadline that passed during the read act before a command reaches its model', async () => {
    await whileReadHeld('bgdue', async ({ warden, clock }) => {
      // m1 waits for an approval (600 s). Its deadline passes while the instance has not read it: nothing
      // knows of its timer yet (the start-up index applies once the read ends).
      clock.advance(601_000);
      expect(warden.residency().timersIndexed).toBe(0);
      // The approval comes too late: the deadline acts first, as it would have on time.
      await expect(warden.approve('m1', { by: 'oncall', note: 'late' })).rejects.toMatchObject({
        name: 'NoPendingApprovalError',
      });
      await warden.idle();
      expect(warden.status('m1').models[0]!.state).not.toBe('awaitingApproval');
    });
  });

  it("answers one model's rollback history during the read, its key from earlier builds included; the fleet's waits", async () => {
    const model = `m${MODELS - 5}`;
    // Written by a build that kept the history in the actor bucket, after every model: not read yet.
    const record = {
      at: 1,
      modelId: model,
      kind: 'rolled_back',
      payload: { event_id: 'old-rb', model_id: model },
    };
    const setUp = async (buckets: StoreBuckets) => {
      await buckets.kv.put(`history.${model}`, JSON.stringify({ records: [record] }));
    };
    await whileReadHeld(
      'bghist',
      async ({ warden, release }) => {
        let loaded = false;
        void warden.whenLoaded().then(() => (loaded = true));
        expect(await warden.history({ model_id: model })).toEqual({
          rollbacks: [{ outcome: 'rolled_back', event_id: 'old-rb', model_id: model }],
        });
        expect(await warden.history({ model_id: 'nosuch' })).toEqual({ rollbacks: [] });
        expect(loaded).toBe(false);
        // The fleet's history looks at every model: it waits (bounded, like every such read: see below).
        let fleet: unknown = null;
        const whole = warden.history().then((h) => (fleet = h));
        for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
        expect(fleet).toBeNull();
        release();
        await whole;
        expect(fleet).toMatchObject({ rollbacks: [{ event_id: 'old-rb' }] });
      },
      { setUp },
    );
  });

  it('takes inputs and commands for models not read yet as they are stored, and ends as a run that read them first', async () => {
    const held = await storeBuckets(nc, 'bgheld');
    const first = await storeBuckets(nc, 'bgfirst');
    const heldClock = new ManualClock();
    const firstClock = new ManualClock();
    await writeModels(held, heldClock);
    await writeModels(first, firstClock);
    await strand(held);
    await strand(first);

    // The run to compare with reads every value first.
    const reference = await wardenOver(first, firstClock, false);
    const expectedMeanwhile = await meanwhile(reference.warden);
    const expectedAfter = await afterwards(reference.warden, firstClock);
    await reference.warden.stop();

    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const { warden } = await wardenOver(
      { ...held, kv: heldRead(held.kv, LET_THROUGH, released) },
      heldClock,
      true,
    );
    try {
      let loaded = false;
      void warden.whenLoaded().then(() => (loaded = true));
      const stranded: unknown[] = [];
      warden.bus.subscribe('warden.evt.alert.m3', (message) => void stranded.push(message.data));
      let listed = false;
      const list = (async () => {
        await warden.whenLoaded();
        listed = true;
        return warden.status().models.length;
      })();

      expect(await meanwhile(warden)).toEqual(expectedMeanwhile);
      expect(expectedMeanwhile.evaluated).toEqual([`m${MODELS - 1}`, 'healthy', 'healthy']);
      expect(expectedMeanwhile.promoted).toEqual([`m${MODELS - 3}`, 'v3', 'promoted']);
      expect(expectedMeanwhile.named).toEqual(['s_v9', 'healthy']);
      expect(expectedMeanwhile.pair).toEqual(['promoted', 'regression']);
      expect(expectedMeanwhile.unknown).toBe('UnknownModelError');
      // Still held: the instance worked on what it read for them alone, and lists waited.
      expect(loaded).toBe(false);
      expect(warden.stateRead()).toBe(false); // warden_state_read: the gauges count part of the models
      expect(listed).toBe(false);
      expect(warden.residency().timersIndexed).toBe(0);
      // m3 is not read yet: its stranded event waits for the read (the sweep would take 30 s).
      expect(stranded).toEqual([]);
      // A read of one model, or of one config, reads what it needs without waiting for every model; one
      // that only every model can answer (whether an unknown key is some model's config) waits.
      await warden.readableModel(`m${MODELS - 2}`);
      expect(warden.status(`m${MODELS - 2}`).models[0]).toMatchObject({
        state: 'healthy',
        production_version: 'v2',
      });
      await warden.readableTraining(`m${MODELS - 4}`);
      expect(warden.trainingStatus(`m${MODELS - 4}`)).toMatchObject({ known: true, may_train: true });
      let answered = false;
      const unknownConfig = warden.readableTraining('nosuch').then(() => (answered = true));
      for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
      expect(answered).toBe(false);
      // A read bounded in time (the API's) is refused then, as retryable, saying why.
      const refused = warden.readable(0).then(
        () => null,
        (error: { code?: string; message: string }) => error,
      );
      heldClock.advance(0);
      expect(await refused).toMatchObject({
        code: 'unavailable',
        message: expect.stringContaining("still reading every model's stored state"),
      });

      release();
      expect(await list).toBe(MODELS + 1);
      expect(warden.stateRead()).toBe(true);
      await eventually(() => expect(stranded).toEqual([{ event_id: 'stranded-1', model_id: 'm3' }]));
      await unknownConfig;
      expect(warden.trainingStatus('nosuch')).toMatchObject({ known: false });
      expect(await afterwards(warden, heldClock)).toEqual(expectedAfter);
      expect(expectedAfter.m1).not.toBe('awaitingApproval'); // its approval expired
    } finally {
      release();
      await warden.stop();
    }
  });
});
