/**
 * The JetStreamWriter sends the state writes of NATS mode (revision-checked KV updates) with a reply
 * subscription of its own instead of nats.js's request. Whoever reads its answers must not tell the
 * difference: the same revisions, and failures of the library's own types, so that a lost race, a missing
 * stream, a timeout and a closed connection are each handled as before.
 */
import { Kvm } from '@nats-io/kv';
import { connect, TimeoutError, ClosedConnectionError } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { isTransient } from '../../src/nats/intake.ts';
import { JetStreamWriter, kvWrites } from '../../src/nats/js-writer.ts';
import { isWrongRevision } from '../../src/nats/kv-util.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { openStore, storeBuckets } from './kv-store-buckets.ts';

const nats = useSharedNats();

describe('the JetStreamWriter', () => {
  it('writes a key at the revision it was read at, and refuses it at any other, as kv.update does', async () => {
    const kv = await new Kvm(nats.client.nc).create('jsw_update', { history: 1 });
    const first = await kv.put('model.a', '{"n":1}');
    const writer = new JetStreamWriter(nats.client.nc, 5_000);

    const second = await writer.update('$KV.jsw_update.model.a', '{"n":2}', first);
    expect(second).toBeGreaterThan(first);
    const entry = (await kv.get('model.a'))!;
    expect(entry.revision).toBe(second);
    expect(entry.string()).toBe('{"n":2}');

    // A stale revision (someone else wrote since): refused, nothing written, told apart as kv.update's is.
    const stale = await writer.update('$KV.jsw_update.model.a', '{"n":3}', first).catch((e: unknown) => e);
    const library = await kv.update('model.a', '{"n":3}', first).catch((e: unknown) => e);
    expect(isWrongRevision(stale)).toBe(true);
    expect(isWrongRevision(library)).toBe(true);
    expect((stale as Error).message).toBe((library as Error).message);
    expect((await kv.get('model.a'))!.revision).toBe(second);

    // Expected 0: only while the key holds nothing; a delete marker counts as something (the store then
    // writes through kv.create, which writes over it).
    const created = await writer.update('$KV.jsw_update.model.b', '{"n":1}', 0);
    expect((await kv.get('model.b'))!.revision).toBe(created);
    const again = await writer.update('$KV.jsw_update.model.b', '{"n":2}', 0).catch((e: unknown) => e);
    expect(isWrongRevision(again)).toBe(true);
    await kv.delete('model.b');
    const overMarker = await writer.update('$KV.jsw_update.model.b', '{"n":3}', 0).catch((e: unknown) => e);
    expect(isWrongRevision(overMarker)).toBe(true);

    // Many at once, each answered to its own caller.
    const keys = Array.from({ length: 200 }, (_, i) => `model.k${i}`);
    const revisions = await Promise.all(keys.map((k) => kv.put(k, '0')));
    const written = await Promise.all(
      keys.map((k, i) => writer.update(`$KV.jsw_update.${k}`, String(i), revisions[i]!)),
    );
    for (const [i, k] of keys.entries()) {
      const stored = (await kv.get(k))!;
      expect([stored.revision, stored.string()]).toEqual([written[i], String(i)]);
    }
  });

  it("writes the KV store's commits (kvWrites): a new actor's, one over a delete marker, and a later one", async () => {
    const b = await storeBuckets(nats.client.nc, 'jsw_store');
    const writer = new JetStreamWriter(nats.client.nc, 5_000);
    const sent: number[] = [];
    const writes = kvWrites(writer, b.kv, 'jsw_store_actors');
    const store = await openStore(b, {
      sweepEveryMs: 600_000,
      update: (key, json, expected) => {
        sent.push(expected);
        return writes(key, json, expected);
      },
    });
    try {
      await b.kv.put('model.gone', '{}');
      await b.kv.delete('model.gone');
      const commit = (key: string, revision: number, n: number) =>
        store.commit({
          actors: [{ kind: 'model', key, revision, snapshot: { n } }],
          outbox: [],
          history: [],
        });
      const [fresh] = await commit('fresh', 0, 1);
      const [overMarker] = await commit('gone', 0, 1);
      const [later] = await commit('fresh', fresh!, 2);
      expect(sent).toEqual([0, 0, fresh]);
      // Not a key (as kv.update refuses it): refused before anything is sent.
      for (const bad of ['model.a b', 'model.*', 'model.>', '.model', 'model.'])
        await expect(writes(bad, '{}', 0)).rejects.toThrow(`invalid KV key "${bad}"`);
      for (const [key, revision, n] of [
        ['fresh', later, 2],
        ['gone', overMarker, 1],
      ] as const) {
        const entry = (await b.kv.get(`model.${key}`))!;
        expect(entry.revision).toBe(revision);
        expect(entry.json<{ snapshot: { n: number } }>().snapshot.n).toBe(n);
      }
    } finally {
      await store.close();
    }
  });

  it('publishes to a stream once per message id, as js.publish does', async () => {
    await nats.client.jsm.streams.add({ name: 'JSW_EVENTS', subjects: ['jsw.evt.>'] });
    const writer = new JetStreamWriter(nats.client.nc, 5_000);
    const data = new TextEncoder().encode('{"event_id":"e1"}');
    const first = await writer.publish('jsw.evt.a', data, { msgId: 'e1' });
    const again = await writer.publish('jsw.evt.a', data, { msgId: 'e1' });
    const other = await writer.publish('jsw.evt.a', data, { msgId: 'e2' });
    expect([first.duplicate, again.duplicate, other.duplicate]).toEqual([false, true, false]);
    expect(again.seq).toBe(first.seq);
    expect(other.seq).toBe(first.seq + 1);
    expect((await nats.client.jsm.streams.info('JSW_EVENTS')).state.messages).toBe(2);
  });

  it('a subject no stream takes fails as a JetStream failure (retried), not as a lost race', async () => {
    const writer = new JetStreamWriter(nats.client.nc, 5_000);
    const error = await writer.update('jsw.nobody.listens', '{}', 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/no JetStream stream answered for jsw\.nobody\.listens/);
    expect(isWrongRevision(error)).toBe(false);
    expect(isTransient(error)).toBe(true);
  });

  it('an answer that does not come fails as a timeout once the clock says so, and a late answer is dropped', async () => {
    const clock = new ManualClock();
    const writer = new JetStreamWriter(nats.client.nc, 5_000, clock);
    // A responder that keeps the request and answers only when told.
    let answer: (() => void) | null = null;
    const held = nats.client.nc.subscribe('jsw.slow', {
      callback: (_error, message) => {
        answer = () => message.respond(new TextEncoder().encode('{"stream":"S","seq":7}'));
      },
    });
    const pending = writer.update('jsw.slow', '{}', 1);
    const outcome = pending.then(
      (seq) => ({ seq }),
      (error: unknown) => ({ error }),
    );
    await nats.client.nc.flush();
    await expect.poll(() => answer).not.toBeNull();
    clock.advance(4_999);
    expect(await Promise.race([outcome, Promise.resolve('waiting')])).toBe('waiting');
    clock.advance(1);
    const { error } = (await outcome) as { error: unknown };
    expect(error).toBeInstanceOf(TimeoutError);
    expect(isTransient(error)).toBe(true);
    answer!(); // too late: nobody is told twice
    answer = null;
    await nats.client.nc.flush();

    // The next one is answered in time.
    const next = writer.update('jsw.slow', '{}', 1);
    await expect.poll(() => answer).not.toBeNull();
    answer!();
    expect(await next).toBe(7);
    held.unsubscribe();
  });

  it('what waits when the connection closes fails as closed, and so does what comes after', async () => {
    const nc = await connect({ servers: nats.server.url });
    const writer = new JetStreamWriter(nc, 5_000, new ManualClock());
    nc.subscribe('jsw.never', { callback: () => undefined });
    await nc.flush();
    const waiting = writer.update('jsw.never', '{}', 1).catch((e: unknown) => e);
    await nc.close();
    expect(await waiting).toBeInstanceOf(ClosedConnectionError);
    const after = await writer.update('jsw.never', '{}', 1).catch((e: unknown) => e);
    expect(after).toBeInstanceOf(ClosedConnectionError);
    expect(isTransient(after)).toBe(true);
  });
});
