import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { parseConfig } from '../../src/config/load.ts';
import { connectionOptions, describeServers } from '../../src/nats/connection.ts';
import { covers } from '../../src/nats/subjects.ts';
import { decodeMessage, withStreamEventId } from '../../src/nats/codec.ts';
import { KvRegistry } from '../../src/nats/registry.ts';
import { DEFAULT_KV_STORE_OPTIONS, KvStore } from '../../src/nats/kv-store.ts';
import { rememberedId } from '../../src/machines/remembered-id.ts';
import { eventually } from '../harness/eventually.ts';
import pino from 'pino';
import { startNatsServer, type NatsServer } from '../harness/nats-server.ts';
import { openStore, storeBuckets, timelineLine } from './kv-store-buckets.ts';

describe('subject coverage', () => {
  it.each([
    ['warden.in.>', 'warden.in.promotion.*', true],
    ['warden.in.>', 'warden.in.>', true],
    ['warden.evt.alert.*', 'warden.evt.alert.*', true],
    ['warden.evt.alert.*', 'warden.evt.alert.hex8_2p', true],
    ['warden.evt.alert.*', 'warden.evt.>', false],
    ['warden.evt.promotion_rolled_back.*', 'warden.evt.*.*', false],
    ['warden.in.>', 'warden.in', false],
    ['warden.int.pause_acknowledged.*', 'warden.int.pause_acknowledged.a.b', false],
  ])('%s covers %s: %s', (filter, pattern, expected) => {
    expect(covers(filter, pattern)).toBe(expected);
  });
});

describe('decoding inputs', () => {
  const bytes = (text: string) => new TextEncoder().encode(text);

  it('hands over JSON as data and anything else as raw text', () => {
    expect(decodeMessage('s', bytes('{"a":1}'), 100)).toEqual({
      kind: 'message',
      message: { subject: 's', data: { a: 1 }, raw: '{"a":1}' },
    });
    expect(decodeMessage('s', bytes('NaN'), 100)).toEqual({
      kind: 'message',
      message: { subject: 's', data: undefined, raw: 'NaN' },
    });
    expect(decodeMessage('s', bytes(''), 100)).toEqual({
      kind: 'message',
      message: { subject: 's', data: undefined, raw: '' },
    });
    expect(decodeMessage('s', bytes('x'.repeat(101)), 100)).toMatchObject({ kind: 'tooLarge', bytes: 101 });
  });

  it('stamps an event id from the stream position on objects that have none, and leaves the rest alone', () => {
    const message = (data: unknown) => ({ subject: 's', data, raw: '' });
    expect(withStreamEventId(message({ model_id: 'm' }), 'WARDEN_IN@x', 7).data).toEqual({
      model_id: 'm',
      event_id: 'WARDEN_IN@x:7',
    });
    expect(withStreamEventId(message({ model_id: 'm', event_id: 'mine' }), 'S', 7).data).toEqual({
      model_id: 'm',
      event_id: 'mine',
    });
    expect(withStreamEventId(message({ event_id: 12 }), 'S', 7).data).toEqual({ event_id: 12 });
    expect(withStreamEventId(message([1]), 'S', 7).data).toEqual([1]);
    expect(withStreamEventId(message(undefined), 'S', 7).data).toBeUndefined();
  });
});

describe('connection options', () => {
  const nats = (input: Record<string, unknown>) => parseConfig({ nats: input }).nats;

  it('takes credentials out of the URL, and keeps them out of the logs', () => {
    const options = connectionOptions(
      nats({ url: 'nats://warden:s3cr%40t@nats:4222,nats://other:4223' }),
      'warden',
    );
    expect(options).toMatchObject({
      servers: ['nats:4222', 'other:4223'],
      user: 'warden',
      pass: 's3cr@t',
      maxReconnectAttempts: -1,
    });
    expect(describeServers(nats({ url: 'nats://warden:s3cr%40t@nats:4222' }))).toBe('nats://nats:4222');
    expect(connectionOptions(nats({ url: 'nats://t0ken@nats' }), 'w')).toMatchObject({
      servers: ['nats:4222'],
      token: 't0ken',
    });
  });

  it('prefers the configured credentials', () => {
    expect(connectionOptions(nats({ url: 'nats://a:b@h:1', user: 'u', pass: 'p' }), 'w')).toMatchObject({
      user: 'u',
      pass: 'p',
    });
    expect(connectionOptions(nats({ url: 'h:1', credsFile: '/x.creds' }), 'w').authenticator).toBeTypeOf(
      'function',
    );
  });
});

describe('the KV registry', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  let registry: KvRegistry;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    kv = await new Kvm(jetstream(nc)).create('registry_test', { history: 10 });
    registry = new KvRegistry(kv);
  });

  afterAll(async () => {
    await nc?.close();
    await server?.[Symbol.asyncDispose]();
  });

  const request = (rollbackId: string, modelId = 'm') => ({
    rollbackId,
    modelId,
    fromVersion: 'v2',
    toVersion: 'v1',
    reason: 'r',
    at: 1_000,
    fromPromotion: { at: 100, earlier: ['v0', 'v1'] },
  });

  it('applies a rollback once, however often it is asked to', async () => {
    await registry.recordPromotion('m', 'v2', 500, 'promoted');
    await registry.rollback(request('m.r1'));
    const revision = (await kv.get('m'))!.revision;
    await registry.rollback(request('m.r1'));
    expect((await kv.get('m'))!.revision).toBe(revision);
    expect(await registry.production('m')).toEqual({
      modelId: 'm',
      version: 'v1',
      since: 1_000,
      reason: 'r',
    });
    expect((await kv.get('m'))!.json()).toMatchObject({ model_id: 'm', version: 'v1', rollback_id: 'm.r1' });
  });

  it('refuses a rollback from a version that is not in production, unless it is already on the target', async () => {
    await registry.recordPromotion('n', 'v7', 500, 'set by hand');
    await expect(registry.rollback(request('n.r1', 'n'))).rejects.toThrow(
      'expected n to be at v2 in production, found v7',
    );
    await registry.recordPromotion('o', 'v1', 500, 'the v2 promotion was never written');
    await registry.rollback(request('o.r1', 'o'));
    expect((await kv.get('o'))!.json()).toMatchObject({ version: 'v1', rollback_id: 'o.r1' });
  });

  it("applies a rollback over a pointer that lags Warden's own promotions (writes lost in a crash)", async () => {
    // v0 was production before v2 was promoted (at 100): the writes of v1 and v2 never landed.
    await registry.recordPromotion('lag', 'v0', 40, 'promoted');
    await registry.rollback(request('lag.r1', 'lag'));
    expect((await kv.get('lag'))!.json()).toMatchObject({ version: 'v1', rollback_id: 'lag.r1' });
    // The same pointer written after v2's promotion was moved by someone else: refused.
    await registry.recordPromotion('moved', 'v0', 101, 'moved by hand');
    await expect(registry.rollback(request('moved.r1', 'moved'))).rejects.toThrow(
      'expected moved to be at v2 in production, found v0',
    );
    // Old, but at a version Warden never promoted before v2: moved by someone else, refused.
    await registry.recordPromotion('stranger', 'v9', 40, 'set by hand');
    await expect(registry.rollback(request('stranger.r1', 'stranger'))).rejects.toThrow('found v9');
    // Unknown promotion time: only the version rolled back from, or the target, is taken.
    await registry.recordPromotion('unknown', 'v0', 40, 'promoted');
    await expect(
      registry.rollback({ ...request('unknown.r1', 'unknown'), fromPromotion: null }),
    ).rejects.toThrow('found v0');
  });

  it('lets one of two concurrent writers apply it, and the other see it done', async () => {
    await registry.recordPromotion('p', 'v2', 500, 'promoted');
    await Promise.all([
      registry.rollback(request('p.r1', 'p')),
      new KvRegistry(kv).rollback(request('p.r1', 'p')),
    ]);
    const history = await kv.history({ key: 'p' });
    const versions: string[] = [];
    for await (const entry of history) versions.push((entry.json() as { version: string }).version);
    expect(versions).toEqual(['v2', 'v1']);
  });

  it('reads the pointer again when someone moved it since this instance wrote it', async () => {
    // Written again elsewhere, same version: the write from memory is refused, the fresh read applies it.
    await registry.recordPromotion('q', 'v2', 500, 'promoted');
    await kv.put(
      'q',
      JSON.stringify({ model_id: 'q', version: 'v2', since: 'x', reason: 'again', rollback_id: null }),
    );
    await registry.rollback(request('q.r1', 'q'));
    expect((await kv.get('q'))!.json()).toMatchObject({ version: 'v1', rollback_id: 'q.r1' });
    // Moved elsewhere: refused, saying where it is now (not where this instance last put it).
    await registry.recordPromotion('s', 'v2', 500, 'promoted');
    await kv.put(
      's',
      JSON.stringify({ model_id: 's', version: 'v9', since: 'x', reason: 'hand', rollback_id: null }),
    );
    await expect(registry.rollback(request('s.r1', 's'))).rejects.toThrow(
      'expected s to be at v2 in production, found v9',
    );
  });

  it("never lands a promotion of an instance that lost the model on top of the new writer's rollback", async () => {
    // This instance writes the model until its write is sent; by the time NATS takes it, another instance
    // has taken the model over and rolled it back (a freeze, a slow network).
    let valid = true;
    const late = new Proxy(kv, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (['put', 'update', 'create'].includes(String(property)) && args[0] === 'late' && valid) {
            valid = false;
            await kv.put(
              'late',
              JSON.stringify({
                model_id: 'late',
                version: 'v1',
                since: 'x',
                reason: 'rolled back',
                rollback_id: 'late.r1',
              }),
            );
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const losing = new KvRegistry(late, undefined, {
      whenValid: async () => valid,
      holds: () => valid,
      closed: () => false,
    });
    await kv.put(
      'late',
      JSON.stringify({ model_id: 'late', version: 'v1', since: 'x', reason: 'promoted', rollback_id: null }),
    );
    await losing.production('late'); // its pointer as this instance knew it, with its revision
    await expect(losing.recordPromotion('late', 'v2', 500, 'promoted')).rejects.toThrow(
      'this instance no longer takes late',
    );
    expect((await kv.get('late'))!.json()).toMatchObject({ version: 'v1', rollback_id: 'late.r1' });
  });
});

describe('the KV store', () => {
  let server: NatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  });

  afterAll(async () => {
    await nc?.close();
    await server?.[Symbol.asyncDispose]();
  });

  const buckets = (name: string) => storeBuckets(nc, name);

  it('while no event can be published, says so in one line per sweep, not one per actor', async () => {
    const { kv, trainingKv, timelineKv } = await buckets('sweep');
    // Three actors whose events another instance committed and never published.
    for (const id of ['a', 'b', 'c']) {
      const entry = { id: `${id}.e1`, subject: `warden.evt.alert.${id}`, payload: { event_id: `${id}.e1` } };
      await kv.put(
        `model.${id}`,
        JSON.stringify({ snapshot: {}, outbox: [entry], history: [], timeline: [] }),
      );
    }
    const lines: Array<{ msg: string; actors?: number; key?: string }> = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    let attempts = 0;
    const store = await KvStore.open(
      kv,
      trainingKv,
      timelineKv,
      {
        ...DEFAULT_KV_STORE_OPTIONS,
        strandedAfterMs: 0,
        sweepEveryMs: 20,
        publish: async () => {
          attempts++;
          throw new Error('stream WARDEN_EVENTS refused a publication: maximum messages exceeded');
        },
      },
      logger,
    );
    try {
      await eventually(() => expect(attempts).toBeGreaterThanOrEqual(6));
    } finally {
      await store.close();
    }
    const stranded = lines.filter((l) => l.msg.includes('stranded'));
    expect(stranded.length).toBeGreaterThan(0);
    expect(stranded.length).toBeLessThanOrEqual(Math.ceil(attempts / 3));
    for (const line of stranded) {
      expect(line).toMatchObject({ actors: 3 });
      expect(line.msg).toBe('could not publish the stranded events of 3 actor(s); will try again');
    }
  });

  it("tells its watchers of other writers' commits, not of its own: the watch's copy of its own write is not taken for another's", async () => {
    const { kv, trainingKv, timelineKv } = await buckets('own');
    const store = await openStore({ kv, trainingKv, timelineKv });
    const heard: Array<{ key: string; revision: number }> = [];
    const unwatch = store.watch((record) => heard.push({ key: record.key, revision: record.revision }));
    const snapshot = (n: number) => ({ machine: 'model.v3', snapshot: { value: 'healthy', context: { n } } });
    try {
      // The server usually sends the watch its copy of a write before it answers the write: a store that
      // took that copy for another writer's decoded it again and told the runtime of its own commit.
      let revision = 0;
      for (let n = 1; n <= 40; n++) {
        const revisions = await store.commit({
          actors: [{ kind: 'model', key: 'mine', revision, snapshot: snapshot(n) }],
          outbox: [],
          history: [],
        });
        revision = revisions[0]!;
      }
      // Another writer's commit, then a marker: once the marker is heard, every earlier entry was too.
      const theirs = await kv.update(
        'model.mine',
        JSON.stringify({ snapshot: snapshot(41), outbox: [], history: [], timeline: [] }),
        revision,
      );
      await kv.put(
        'model.marker',
        JSON.stringify({ snapshot: snapshot(0), outbox: [], history: [], timeline: [] }),
      );
      await eventually(() => expect(heard.map((h) => h.key)).toContain('marker'));
      expect(heard).toEqual([
        { key: 'mine', revision: theirs },
        { key: 'marker', revision: theirs + 1 },
      ]);
      expect((await store.loadActor('model', 'mine'))?.snapshot).toEqual(snapshot(41));
    } finally {
      unwatch();
      await store.close();
    }
  });

  it('clears published events from the values of the actors that hold them, soon after they are marked published, and moves their history on', async () => {
    const { kv, trainingKv, timelineKv } = await buckets('settle');
    const entry = (id: string) => ({
      id: `${id}.e1`,
      subject: `warden.evt.promotion_rolled_back.${id}`,
      payload: { event_id: `${id}.e1` },
    });
    const models = Array.from({ length: 300 }, (_, i) => `m${i}`);
    for (const id of models) {
      await kv.put(
        `model.${id}`,
        JSON.stringify({
          snapshot: {},
          outbox: [entry(id)],
          history: [{ at: 1, modelId: id, kind: 'rolled_back', payload: { event_id: `${id}.e1` } }],
          timeline: [],
        }),
      );
    }
    // The sweeper would clear them too, but not within this test: only the marking can.
    const store = await openStore({ kv, trainingKv, timelineKv }, { sweepEveryMs: 600_000 });
    const outboxOf = async (id: string) =>
      ((await kv.get(`model.${id}`))!.json() as { outbox: unknown[] }).outbox.length;
    try {
      await store.markPublished(['m7.e1', 'm250.e1', 'not-an-event-here']);
      await eventually(async () => {
        expect(await outboxOf('m7')).toBe(0);
        expect(await outboxOf('m250')).toBe(0);
      });
      expect((await store.history({ modelId: 'm7', limit: 10 })).map((h) => h.payload.event_id)).toEqual([
        'm7.e1',
      ]);
      expect(await kv.get('history.m7')).toBeNull(); // the actor bucket holds no history any more
      expect(await timelineKv.get('history.m7')).not.toBeNull();
      // Unpublished, it stays with its actor.
      expect(await outboxOf('m8')).toBe(1);
    } finally {
      await store.close();
    }
  });

  it("moves rollback history to the timeline bucket (the model's key and the fleet's newest), never to the watched actor bucket, and still shows what an earlier build wrote there", async () => {
    const { kv, trainingKv, timelineKv } = await buckets('histmove');
    const record = (model: string, n: number) => ({
      at: n,
      modelId: model,
      kind: 'rolled_back',
      payload: { event_id: `${model}.e${n}`, model_id: model },
    });
    const entry = (model: string, n: number) => ({
      id: `${model}.e${n}`,
      subject: `warden.evt.promotion_rolled_back.${model}`,
      payload: { event_id: `${model}.e${n}` },
    });
    // An earlier build's history key in the actor bucket; then a rollback of each model, published.
    await kv.put('history.m', JSON.stringify({ records: [record('m', 1)] }));
    await kv.put(
      'model.m',
      JSON.stringify({ snapshot: {}, outbox: [entry('m', 2)], history: [record('m', 2)], timeline: [] }),
    );
    const many = Array.from({ length: 1_005 }, (_, i) => i + 3);
    await kv.put(
      'model.n',
      JSON.stringify({
        snapshot: {},
        outbox: many.map((n) => entry('n', n)),
        history: many.map((n) => record('n', n)),
        timeline: [],
      }),
    );
    const store = await openStore(
      { kv, trainingKv, timelineKv },
      { sweepEveryMs: 600_000, historyLimit: 200 },
    );
    const ids = (records: Array<{ payload: Record<string, unknown> }>) =>
      records.map((r) => r.payload.event_id);
    const idsOf = async (key: string) =>
      ids(
        (await timelineKv.get(key))?.json<{ records: Array<{ payload: Record<string, unknown> }> }>()
          .records ?? [],
      );
    try {
      await store.markPublished(['m.e2', ...many.map((n) => `n.e${n}`)]);
      await eventually(async () => {
        for (const model of ['m', 'n'])
          expect((await kv.get(`model.${model}`))!.json<{ history: unknown[] }>().history).toEqual([]);
      });
      // The actor bucket: the earlier build's key as it was, and nothing new.
      expect(
        ids(
          (await kv.get('history.m'))!.json<{ records: Array<{ payload: Record<string, unknown> }> }>()
            .records,
        ),
      ).toEqual(['m.e1']);
      expect(await kv.get('history.n')).toBeNull();
      // The timeline bucket: each model's newest (historyLimit), and the fleet's newest 1,000, oldest first.
      expect(await idsOf('history.m')).toEqual(['m.e2']);
      expect(await idsOf('history.n')).toEqual(many.slice(-200).map((n) => `n.e${n}`));
      expect(await idsOf('rollbacks')).toEqual(['m.e2', ...many.map((n) => `n.e${n}`)].slice(-1_000));
      // What the queries show: both buckets, each record once, newest first.
      expect(ids(await store.history({ modelId: 'm', limit: 10 }))).toEqual(['m.e2', 'm.e1']);
      expect(ids(await store.history({ limit: 3 }))).toEqual(['n.e1007', 'n.e1006', 'n.e1005']);
      const all = ids(await store.history({ limit: 1_000 }));
      expect(all).toHaveLength(1_000);
      expect(new Set(all).size).toBe(1_000);
      // A move made again (a crash before the value was cleared) adds nothing.
      const fleet = await idsOf('rollbacks');
      await kv.put(
        'model.m',
        JSON.stringify({ snapshot: {}, outbox: [entry('m', 2)], history: [record('m', 2)], timeline: [] }),
      );
      await store.markPublished(['m.e2']);
      await eventually(async () =>
        expect((await kv.get('model.m'))!.json<{ history: unknown[] }>().history).toEqual([]),
      );
      expect(await idsOf('history.m')).toEqual(['m.e2']);
      expect(await idsOf('rollbacks')).toEqual(fleet); // m.e2 is older than the newest 1,000: left out
    } finally {
      await store.close();
    }
  });

  it('sweeps (and claims) only the actors it has work for, not every value it holds, and still does that work', async () => {
    const { kv, trainingKv, timelineKv } = await buckets('sweepfew');
    const quiet = JSON.stringify({ snapshot: {}, outbox: [], history: [], timeline: [], attention: false });
    for (let start = 0; start < 2_000; start += 500)
      await Promise.all(Array.from({ length: 500 }, (_, i) => kv.put(`model.q${start + i}`, quiet)));
    // One actor with an event nobody published, one with a line waiting, one training config.
    const stranded = {
      id: 's.e1',
      subject: 'warden.evt.regression_detected.s',
      payload: { event_id: 's.e1' },
    };
    await kv.put('model.s', JSON.stringify({ snapshot: {}, outbox: [stranded], history: [], timeline: [] }));
    await kv.put(
      'model.l',
      JSON.stringify({
        snapshot: {},
        outbox: [],
        history: [],
        timeline: [timelineLine(1, 'l')],
      }),
    );
    await kv.put(
      'training.t',
      JSON.stringify({
        snapshot: {
          snapshot: {
            status: 'active',
            value: 'paused',
            context: { configKey: 't', reason: 'r', by: 'ops' },
          },
        },
        outbox: [],
        history: [],
        timeline: [],
      }),
    );
    const published: string[] = [];
    const store = await openStore(
      { kv, trainingKv, timelineKv },
      {
        sweepEveryMs: 600_000,
        strandedAfterMs: 0,
        timelineMoveAfterMs: 0,
        publish: async (entry) => {
          published.push(entry.id);
        },
      },
    );
    const internals = store as unknown as {
      sweep(): Promise<void>;
      hasPublished(value: unknown): boolean;
    };
    let looked = 0;
    const hasPublished = internals.hasPublished.bind(store);
    internals.hasPublished = (value: unknown) => {
      looked++;
      return hasPublished(value);
    };
    try {
      await internals.sweep();
      expect(looked).toBeLessThanOrEqual(10); // not 2,003
      // A take-over's claims likewise: only the actors whose state needs them are looked at.
      let asked = 0;
      await store.claimAll(1, () => {
        asked++;
        return false;
      });
      expect(asked).toBe(3); // s (an event), l (no start-up index: attention unknown), training t
      expect(published).toEqual(['s.e1']);
      await eventually(async () =>
        expect((await kv.get('model.l'))!.json<{ timeline: unknown[] }>().timeline).toEqual([]),
      );
      expect(await trainingKv.get('t')).not.toBeNull();
    } finally {
      await store.close();
    }
  });

  it('moves the history keys an earlier build wrote in the actor bucket to the timeline bucket, and deletes them', async () => {
    const { kv: raw, trainingKv, timelineKv } = await buckets('histlegacy');
    const record = (model: string, n: number) => ({
      at: n,
      modelId: model,
      kind: 'rolled_back',
      payload: { event_id: `${model}.e${n}`, model_id: model },
    });
    for (const model of ['a', 'b'])
      await raw.put(`history.${model}`, JSON.stringify({ records: [record(model, 1), record(model, 2)] }));
    // One record of b was moved already (a move cut between its copy and its delete).
    await timelineKv.put('history.b', JSON.stringify({ records: [record('b', 1)] }));
    // An earlier build still running (a rolling upgrade) appends to a's key while this instance moves it.
    let appended = false;
    const kv = new Proxy(raw, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (property === 'delete' && args[0] === 'history.a' && !appended) {
            appended = true;
            await raw.put('history.a', JSON.stringify({ records: [1, 2, 3].map((n) => record('a', n)) }));
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const store = await openStore({ kv, trainingKv, timelineKv }, { sweepEveryMs: 600_000 });
    const internals = store as unknown as { sweep(): Promise<void> };
    type Records = { records: Array<{ payload: Record<string, unknown> }> };
    const ids = (records: Records['records']) => records.map((r) => r.payload.event_id);
    const stored = async (bucket: KV, key: string) => {
      const entry = await bucket.get(key);
      return entry?.operation === 'PUT' ? ids(entry.json<Records>().records) : null;
    };
    try {
      expect(ids(await store.history({ limit: 10 }))).toEqual(['b.e2', 'a.e2', 'b.e1', 'a.e1']);
      await internals.sweep();
      expect(appended).toBe(true);
      expect(await stored(raw, 'history.b')).toBeNull();
      expect(await stored(timelineKv, 'history.b')).toEqual(['b.e1', 'b.e2']);
      // a's delete was refused (its key changed since it was read); the next sweep moves the addition too.
      expect(await stored(raw, 'history.a')).toHaveLength(3);
      await eventually(async () => {
        await internals.sweep();
        expect(await stored(raw, 'history.a')).toBeNull();
      });
      expect(await stored(timelineKv, 'history.a')).toEqual(['a.e1', 'a.e2', 'a.e3']);
      expect(await stored(timelineKv, 'rollbacks')).toEqual(['a.e1', 'b.e1', 'a.e2', 'b.e2', 'a.e3']);
      await eventually(async () =>
        expect(ids(await store.history({ limit: 10 }))).toEqual(['a.e3', 'b.e2', 'a.e2', 'b.e1', 'a.e1']),
      );
      expect(ids(await store.history({ modelId: 'b', limit: 10 }))).toEqual(['b.e2', 'b.e1']);
    } finally {
      await store.close();
    }
  });

  it('two instances moving the same old history keys at once copy each record once and delete each key', async () => {
    const { kv, trainingKv, timelineKv } = await buckets('histlegacy2');
    const models = ['a', 'b', 'c'];
    const record = (model: string, n: number) => ({
      at: n * 10 + models.indexOf(model),
      modelId: model,
      kind: 'rolled_back',
      payload: { event_id: `${model}.e${n}`, model_id: model },
    });
    for (const model of models)
      await kv.put(`history.${model}`, JSON.stringify({ records: [1, 2, 3].map((n) => record(model, n)) }));
    // Both write every model (no fence): as during a take-over, when the old holder still sweeps.
    const one = await openStore({ kv, trainingKv, timelineKv }, { sweepEveryMs: 600_000 });
    const two = await openStore({ kv, trainingKv, timelineKv }, { sweepEveryMs: 600_000 });
    type Records = { records: Array<{ payload: Record<string, unknown> }> };
    const stored = async (bucket: KV, key: string) => {
      const entry = await bucket.get(key);
      return entry?.operation === 'PUT' ? entry.json<Records>().records.map((r) => r.payload.event_id) : null;
    };
    const sweep = (store: KvStore) => (store as unknown as { sweep(): Promise<void> }).sweep();
    try {
      await Promise.all([sweep(one), sweep(two)]);
      for (const model of models) {
        expect(await stored(kv, `history.${model}`)).toBeNull();
        expect(await stored(timelineKv, `history.${model}`)).toEqual([1, 2, 3].map((n) => `${model}.e${n}`));
      }
      const everyRecord = [1, 2, 3].flatMap((n) => models.map((m) => `${m}.e${n}`));
      expect(await stored(timelineKv, 'rollbacks')).toEqual(everyRecord);
      // Each instance answers from the moved keys, and a sweep made again changes nothing.
      await Promise.all([sweep(one), sweep(two)]);
      expect(await stored(timelineKv, 'rollbacks')).toEqual(everyRecord);
      for (const store of [one, two])
        await eventually(async () =>
          expect((await store.history({ limit: 20 })).map((r) => r.payload.event_id)).toEqual(
            [...everyRecord].reverse(),
          ),
        );
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('a write of the fleet-wide history list that fails is made again, with each record once', async () => {
    const { kv, trainingKv, timelineKv: raw } = await buckets('histretry');
    const numbers = [1, 2];
    await kv.put(
      'model.r',
      JSON.stringify({
        snapshot: {},
        outbox: numbers.map((n) => ({
          id: `r.e${n}`,
          subject: 'warden.evt.promotion_rolled_back.r',
          payload: {},
        })),
        history: numbers.map((n) => ({
          at: n,
          modelId: 'r',
          kind: 'rolled_back',
          payload: { event_id: `r.e${n}` },
        })),
        timeline: [],
      }),
    );
    let refused = 0;
    const timelineKv = new Proxy(raw, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if ((property === 'create' || property === 'update') && args[0] === 'rollbacks' && refused++ < 2)
            return Promise.reject(new Error('TIMEOUT'));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const store = await openStore({ kv, trainingKv, timelineKv }, { sweepEveryMs: 50 });
    try {
      await store.markPublished(['r.e1', 'r.e2']);
      await eventually(async () =>
        expect((await kv.get('model.r'))!.json<{ history: unknown[] }>().history).toEqual([]),
      );
      expect(refused).toBeGreaterThan(2);
      const fleet = (await raw.get('rollbacks'))!.json<{
        records: Array<{ payload: { event_id: string } }>;
      }>();
      expect(fleet.records.map((r) => r.payload.event_id)).toEqual(['r.e1', 'r.e2']);
    } finally {
      await store.close();
    }
  });

  it('keeps each history key within 512 KiB, the oldest records dropped first: long notes never make the move fail', async () => {
    const { kv, trainingKv, timelineKv } = await buckets('histbytes');
    // 3 models with 200 rollbacks each, each rollback with a reason of 1,000 two-byte characters: about
    // 1.2 MB of records, past nats-server's max_payload (1 MB), which no write of the fleet-wide list
    // could then pass.
    const models = ['q0', 'q1', 'q2'];
    const numbers = Array.from({ length: 200 }, (_, i) => i + 1);
    const id = (model: string, n: number) => `${model}.e${n}`;
    for (const [m, model] of models.entries()) {
      await kv.put(
        `model.${model}`,
        JSON.stringify({
          snapshot: {},
          outbox: numbers.map((n) => ({
            id: id(model, n),
            subject: `warden.evt.promotion_rolled_back.${model}`,
            payload: {},
          })),
          history: numbers.map((n) => ({
            at: n * 3 + m,
            modelId: model,
            kind: 'rolled_back',
            payload: { event_id: id(model, n), model_id: model, reason: 'é'.repeat(1_000) },
          })),
          timeline: [],
        }),
      );
    }
    const store = await openStore(
      { kv, trainingKv, timelineKv },
      { sweepEveryMs: 600_000, historyLimit: 200 },
    );
    const idsIn = async (key: string) => {
      const entry = (await timelineKv.get(key))!;
      expect(entry.length).toBeLessThanOrEqual(512 * 1024);
      return entry
        .json<{ records: Array<{ payload: { event_id: string } }> }>()
        .records.map((r) => r.payload.event_id);
    };
    try {
      await store.markPublished(models.flatMap((model) => numbers.map((n) => id(model, n))));
      await eventually(async () => {
        for (const model of models)
          expect((await kv.get(`model.${model}`))!.json<{ history: unknown[] }>().history).toEqual([]);
      });
      expect(await idsIn('history.q1')).toEqual(numbers.map((n) => id('q1', n)));
      // The fleet's newest that fit, in order of time.
      const fleet = await idsIn('rollbacks');
      const all = numbers.flatMap((n) => models.map((model) => id(model, n)));
      expect(fleet.length).toBeGreaterThan(200);
      expect(fleet).toEqual(all.slice(-fleet.length));
    } finally {
      await store.close();
    }
  });

  it('moves a history record whose event is published while an earlier one is being moved, never drops it', async () => {
    const { kv: raw, trainingKv, timelineKv: rawTimelines } = await buckets('histrace');
    const entry = (n: number) => ({
      id: `m.e${n}`,
      subject: 'warden.evt.promotion_rolled_back.m',
      payload: { event_id: `m.e${n}` },
    });
    const record = (n: number) => ({
      at: n,
      modelId: 'm',
      kind: 'rolled_back',
      payload: { event_id: `m.e${n}` },
    });
    // Two rollbacks committed; the first one's event is published.
    await raw.put(
      'model.m',
      JSON.stringify({
        snapshot: {},
        outbox: [entry(1), entry(2)],
        history: [record(1), record(2)],
        timeline: [],
      }),
    );
    // While its record is written to the history key, the second one's event is published.
    let store: KvStore | null = null;
    const timelineKv = new Proxy(rawTimelines, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if ((property === 'create' || property === 'update') && args[0] === 'history.m')
            void store!.markPublished(['m.e2']);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    store = await openStore({ kv: raw, trainingKv, timelineKv }, { sweepEveryMs: 600_000 });
    try {
      await store.markPublished(['m.e1']);
      await eventually(async () =>
        expect((await raw.get('model.m'))!.json<{ outbox: unknown[] }>().outbox).toEqual([]),
      );
      // Both records are in the history: the second one moved by a later pass, not dropped by the first.
      await eventually(async () =>
        expect((await store!.history({ modelId: 'm', limit: 10 })).map((h) => h.payload.event_id)).toEqual([
          'm.e2',
          'm.e1',
        ]),
      );
      expect((await rawTimelines.get('history.m'))!.json<{ records: unknown[] }>().records).toHaveLength(2);
    } finally {
      await store.close();
    }
  });

  it("a process killed between the history move's two writes leaves each record once, and the next instance finishes the move", async () => {
    const { kv: raw, trainingKv, timelineKv } = await buckets('histkill');
    const entry = {
      id: 'k.e1',
      subject: 'warden.evt.promotion_rolled_back.k',
      payload: { event_id: 'k.e1' },
    };
    const record = { at: 1, modelId: 'k', kind: 'rolled_back', payload: { event_id: 'k.e1' } };
    await raw.put(
      'model.k',
      JSON.stringify({ snapshot: {}, outbox: [entry], history: [record], timeline: [] }),
    );
    // The record reaches the history key; the value's write that follows never happens (the process dies).
    const dying = new Proxy(raw, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (property === 'update' && args[0] === 'model.k')
            return Promise.reject(new Error('killed before this write'));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const silent = pino({ level: 'silent' });
    const options = { ...DEFAULT_KV_STORE_OPTIONS, sweepEveryMs: 600_000, publish: async () => undefined };
    const first = await KvStore.open(dying, trainingKv, timelineKv, options, silent);
    try {
      await first.markPublished(['k.e1']);
      await eventually(async () => expect(await timelineKv.get('history.k')).not.toBeNull());
      // Both keys hold it now; it is listed once.
      expect((await raw.get('model.k'))!.json<{ history: unknown[] }>().history).toHaveLength(1);
      expect((await first.history({ modelId: 'k', limit: 10 })).map((h) => h.payload.event_id)).toEqual([
        'k.e1',
      ]);
    } finally {
      await first.close();
    }

    // The next instance publishes the entry again (JetStream drops the duplicate by its id) and ends the move.
    const published: string[] = [];
    const next = await KvStore.open(
      raw,
      trainingKv,
      timelineKv,
      {
        ...options,
        strandedAfterMs: 0,
        sweepEveryMs: 20,
        publish: async (e) => {
          published.push(e.id);
        },
      },
      silent,
    );
    try {
      await eventually(async () =>
        expect((await raw.get('model.k'))!.json<{ outbox: unknown[]; history: unknown[] }>()).toMatchObject({
          outbox: [],
          history: [],
        }),
      );
      expect(published).toContain('k.e1');
      expect((await timelineKv.get('history.k'))!.json<{ records: unknown[] }>().records).toHaveLength(1);
      expect((await next.history({ modelId: 'k', limit: 10 })).map((h) => h.payload.event_id)).toEqual([
        'k.e1',
      ]);
    } finally {
      await next.close();
    }
  });

  it('writes no start-up index read from an actor committed again since (the later commit wrote its own), but one read after bookkeeping only', async () => {
    // Seen in partitions-outage.test.ts: the index of a healthy model (attention cleared after its promotion)
    // waited behind the key's other writes, and landed on top of the model's detection. The model, rolling
    // back, was marked as needing nothing; after a take-over nobody ran its rollback.
    const { kv, trainingKv, timelineKv } = await buckets('index');
    const store = await openStore({ kv, trainingKv, timelineKv });
    try {
      const commit = async (revision: number, state: string, attention: boolean) =>
        (
          await store.commit({
            actors: [{ kind: 'model', key: 'p', revision, snapshot: { state }, attention }],
            outbox: [],
            history: [],
          })
        )[0]!;
      const healthy = await commit(0, 'healthy', true); // a promotion: its registry write to come
      const rollingBack = await commit(healthy, 'rollingBack', true);
      const stored = () => kv.get('model.p').then((e) => e!.json<{ attention: boolean }>());

      // Read while the model was healthy (its promotion's write done), written after the detection: nothing.
      await store.saveIndex([
        { kind: 'model', key: 'p', deadline: null, attention: false, revision: healthy },
      ]);
      expect((await kv.get('model.p'))!.revision).toBe(rollingBack);
      expect((await stored()).attention).toBe(true);

      // Read from the current commit: written.
      const healthyAgain = await commit(rollingBack, 'healthy', true);
      await store.saveIndex([
        { kind: 'model', key: 'p', deadline: null, attention: false, revision: healthyAgain },
      ]);
      expect((await stored()).attention).toBe(false);

      // Read after bookkeeping that kept the snapshot (timeline lines moved: a record then reports the
      // bookkeeping's revision), the snapshot unchanged since: written too.
      const withLines = (
        await store.commit({
          actors: [
            {
              kind: 'model',
              key: 'p',
              revision: healthyAgain,
              snapshot: { state: 'healthy' },
              attention: true,
            },
          ],
          outbox: [],
          history: [],
          timeline: Array.from({ length: 8 }, (_, i) => timelineLine(i)),
        })
      )[0]!;
      const internals = store as unknown as { settleNow(): void; tasks: Set<Promise<unknown>> };
      internals.settleNow();
      await Promise.all([...internals.tasks]);
      const moved = (await kv.get('model.p'))!.revision;
      expect(moved).toBeGreaterThan(withLines);
      expect((await store.loadActor('model', 'p'))!.revision).toBe(moved);
      await store.saveIndex([{ kind: 'model', key: 'p', deadline: null, attention: false, revision: moved }]);
      expect((await stored()).attention).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('finds a long input id applied before as the model remembers it (digested), and as an earlier build stored it', async () => {
    const { kv, trainingKv, timelineKv } = await buckets('applied');
    const uuid = '0b7f4f8e-9a2d-4c51-8e0f-5d2b7a9c1e34';
    const value = (machine: string, ids: string[]) =>
      JSON.stringify({
        snapshot: { machine, snapshot: { value: 'healthy', context: { recentInputIds: ids } } },
        outbox: [],
        history: [],
        timeline: [],
      });
    await kv.put('model.now', value('model.v3', ['short-1', rememberedId(uuid)]));
    await kv.put('model.before', value('model.v2', ['short-1', uuid]));
    const store = await openStore({ kv, trainingKv, timelineKv });
    try {
      for (const model of ['now', 'before']) {
        expect(store.hasApplied(model, uuid)).toBe(true);
        expect(store.hasApplied(model, 'short-1')).toBe(true);
        expect(store.hasApplied(model, uuid.replace('0b7f', '0b7e'))).toBe(false);
      }
    } finally {
      await store.close();
    }
  });
});
