/**
 * NATS mode keeps each actor's timeline in its own key of the timeline bucket, read on demand. The lines are
 * committed with the snapshot (the same revision-checked write, so none is lost) and moved to that key
 * later, a few at a time (once 8 wait, or once the oldest has waited a minute); the actor's value holds only
 * the lines not moved yet, and numbers them, so that a move made twice (a crash between it and the write
 * that clears them) shows no line twice. Reads show the lines of both. Before, the value kept the
 * newest 100 lines for good: every write of a long-lived model carried about 21 KiB of timeline in a value
 * of 25, and every instance held them all in its copy of the bucket (21.4 KiB of heap per model instead of
 * 1.0, docs/performance.md). Moving the lines after every commit tripled a busy actor's writes (a move is
 * three operations), and so did moving them with every write that clears a published event.
 */
import { Kvm } from '@nats-io/kv';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TimelineEntry } from '../../src/actors/ports.ts';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import type { KvStore } from '../../src/nats/kv-store.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import '../harness/property-budget.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { openStore, storeBuckets, timelineLine, type StoreBuckets } from './kv-store-buckets.ts';

const nats = useSharedNats();
afterEach(() => vi.restoreAllMocks());

const line = (n: number): TimelineEntry => timelineLine(n);

let bucketsMade = 0;
const buckets = () => storeBuckets(nats.client.nc, `tl${bucketsMade++}`);
/** Stores swept by hand (`sweep` below), with every waiting line due at the first sweep that sees it. */
const open = (b: StoreBuckets) => openStore(b, { sweepEveryMs: 600_000, timelineMoveAfterMs: 0 });

interface StoreInternals {
  sweep(): Promise<void>;
  settleNow(): void;
  tasks: Set<Promise<unknown>>;
}

/** The store's bookkeeping for the actors marked so far (published events, 8 lines waiting), now. */
async function settleNow(store: KvStore): Promise<void> {
  const internals = store as unknown as StoreInternals;
  internals.settleNow();
  await Promise.all([...internals.tasks]);
}

/** A sweep, and the bookkeeping it finds due (for the stores of `open`: every waiting line), now. */
async function sweep(store: KvStore): Promise<void> {
  const internals = store as unknown as StoreInternals;
  await internals.sweep();
  await settleNow(store);
}

const waitingIn = async (b: StoreBuckets) =>
  (await b.kv.get('model.p'))!.json<{ timeline: unknown[] }>().timeline.length;

const summaries = (lines: readonly TimelineEntry[]) => lines.map((l) => l.summary);
/** What the timeline shows after lines 1..n were committed: the newest 100, newest first. */
const expected = (n: number) => Array.from({ length: Math.min(n, 100) }, (_, i) => `line ${n - i}`);

describe('the timeline in NATS mode', () => {
  it("a long-lived model's value stays small, and its timeline shows its newest 100 lines once each", async () => {
    const clock = new ManualClock();
    await using w = await startNatsWarden(nats.server.url, {
      config: { detection: { mode: 'threshold' }, nats: { prefix: 'tllong' } },
      clock,
    });
    await w.warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
    // A minor regression (announced), then a clean evaluation (cleared): a line each.
    for (let i = 0; i < 150; i++) {
      clock.advance(1_000);
      await w.warden.evaluate({ model_id: 'm', current_elo: i % 2 ? 1500 : 1478, games_played: 400 });
    }
    await w.settled();
    // 151 lines: all but the last few moved, 8 at a time; the rest wait in the value (a minute, at most).
    const actors = await new Kvm(nats.client.nc).open('tllong_actors');
    await eventually(async () => {
      const entry = (await actors.get('model.m'))!;
      expect(entry.json<{ timeline: unknown[] }>().timeline.length).toBeLessThan(8);
      expect(entry.length).toBeLessThan(4096);
    });
    const shown = await w.warden.store.timeline!('model', 'm', 200);
    expect(shown).toHaveLength(100);
    expect(shown[0]!.summary).toMatch(/cleared/); // the 150th evaluation, the newest line
    const times = shown.map((l) => l.at);
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(new Set(times).size).toBe(100);
  });

  it('a value written before the timeline bucket (its newest 100 lines, unnumbered) shows them, and they move on its next commit', async () => {
    const b = await buckets();
    await b.kv.put(
      'model.p',
      JSON.stringify({
        snapshot: {},
        outbox: [],
        history: [],
        timeline: Array.from({ length: 100 }, (_, i) => line(i + 1)),
      }),
    );
    const store = await open(b);
    try {
      expect(summaries(await store.timeline('model', 'p', 200))).toEqual(expected(100));
      const revision = (await b.kv.get('model.p'))!.revision;
      await store.commit({
        actors: [{ kind: 'model', key: 'p', revision, snapshot: {} }],
        outbox: [],
        history: [],
        timeline: [line(101)],
      });
      await settleNow(store);
      expect((await b.kv.get('model.p'))!.json<{ timeline: unknown[] }>().timeline).toEqual([]);
      expect(summaries(await store.timeline('model', 'p', 200))).toEqual(expected(101));
    } finally {
      await store.close();
    }
  });

  it('lines wait in the value until 8 are there, or until the oldest has waited timelineMoveAfterMs; reads show them meanwhile', async () => {
    const b = await buckets();
    let now = 1_000_000;
    vi.spyOn(Date, 'now').mockImplementation(() => now);
    const store = await openStore(b, { sweepEveryMs: 600_000, timelineMoveAfterMs: 60_000 });
    const commit = async (from: number, count: number) =>
      store.commit({
        actors: [
          { kind: 'model', key: 'p', revision: (await b.kv.get('model.p'))?.revision ?? 0, snapshot: {} },
        ],
        outbox: [],
        history: [],
        timeline: Array.from({ length: count }, (_, i) => line(from + i)),
      });
    try {
      await commit(1, 3);
      await sweep(store); // the sweep that first sees them
      expect(await waitingIn(b)).toBe(3);
      now += 59_999;
      await sweep(store);
      expect(await waitingIn(b)).toBe(3);
      expect(summaries(await store.timeline('model', 'p', 200))).toEqual(expected(3));
      now += 1;
      await sweep(store);
      expect(await waitingIn(b)).toBe(0);
      expect(summaries(await store.timeline('model', 'p', 200))).toEqual(expected(3));

      // A busy actor's lines move once 8 wait, without a sweep; its next lines wait again.
      await commit(4, 7);
      await settleNow(store);
      expect(await waitingIn(b)).toBe(7);
      await commit(11, 1);
      await settleNow(store);
      expect(await waitingIn(b)).toBe(0);
      await commit(12, 2);
      await sweep(store); // first seen now: due a minute from now, not at once
      expect(await waitingIn(b)).toBe(2);
      expect(summaries(await store.timeline('model', 'p', 200))).toEqual(expected(13));

      // The write that clears a published event from the value leaves the lines waiting there: moving them
      // each time cost two operations more (most lines come with an event).
      await store.commit({
        actors: [{ kind: 'model', key: 'p', revision: (await b.kv.get('model.p'))!.revision, snapshot: {} }],
        outbox: [{ id: 'e14', subject: 'tl.evt.regression_detected.p', payload: {} }],
        history: [],
        timeline: [line(14)],
      });
      await store.markPublished(['e14']);
      await settleNow(store);
      const value = (await b.kv.get('model.p'))!.json<{ outbox: unknown[]; timeline: unknown[] }>();
      expect([value.outbox, value.timeline.length]).toEqual([[], 3]);
      expect(summaries(await store.timeline('model', 'p', 200))).toEqual(expected(14));
    } finally {
      await store.close();
    }
  });

  it('lines a move could not take (NATS away) are moved at the next sweep, with no other commit of the actor', async () => {
    const b = await buckets();
    const store = await open(b);
    try {
      await store.commit({
        actors: [{ kind: 'model', key: 'p', revision: 0, snapshot: {} }],
        outbox: [],
        history: [],
        timeline: [line(1), line(2)],
      });
      // The move's read of the timeline key fails: the lines stay in the value.
      const get = vi.spyOn(b.timelineKv, 'get').mockRejectedValueOnce(new Error('NATS is away'));
      await sweep(store);
      expect(get).toHaveBeenCalled();
      expect(await waitingIn(b)).toBe(2);

      await sweep(store);
      expect(await waitingIn(b)).toBe(0);
      expect(summaries(await store.timeline('model', 'p', 200))).toEqual(expected(2));
    } finally {
      await store.close();
    }
  });

  it('whatever fails between the commits, the moves and the writes that clear them, every line shows once, in order', async () => {
    // Each step commits some lines, then: no bookkeeping yet; the bookkeeping; the move made but the write
    // that clears the lines failing; or a restart (a new store over the same buckets, the bookkeeping
    // that was due never done).
    const step = fc.record({
      lines: fc.integer({ min: 1, max: 40 }),
      then: fc.constantFrom('nothing', 'settle', 'move only', 'restart'),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), async (steps) => {
        const b = await buckets();
        let store = await open(b);
        let revision = 0;
        let committed = 0;
        try {
          for (const { lines, then } of steps) {
            const fresh = Array.from({ length: lines }, (_, i) => line(committed + i + 1));
            committed += lines;
            await store.commit({
              actors: [{ kind: 'model', key: 'p', revision, snapshot: { n: committed } }],
              outbox: [],
              history: [],
              timeline: fresh,
            });
            if (then === 'settle') await sweep(store);
            if (then === 'move only') {
              const internals = store as unknown as { write: (...args: unknown[]) => Promise<number> };
              const write = vi
                .spyOn(internals, 'write')
                .mockRejectedValueOnce(new Error('the connection was lost'));
              await sweep(store);
              write.mockRestore();
            }
            if (then === 'restart') {
              await store.close();
              store = await open(b);
            }
            revision = (await b.kv.get('model.p'))!.revision;
            expect(summaries(await store.timeline('model', 'p', 200))).toEqual(expected(committed));
          }
          // Once the bookkeeping is done, the value holds no line, and the timeline reads the same.
          await store.commit({
            actors: [{ kind: 'model', key: 'p', revision, snapshot: { n: committed } }],
            outbox: [],
            history: [],
            timeline: [],
          });
          await sweep(store);
          expect(await waitingIn(b)).toBe(0);
          expect(summaries(await store.timeline('model', 'p', 200))).toEqual(expected(committed));
        } finally {
          await store.close();
        }
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});
