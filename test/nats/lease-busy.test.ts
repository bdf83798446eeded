/**
 * A lease held by a busy process. Under a burst of inputs the event loop of a NATS-mode instance turned over
 * about every half second (1,000 evaluations in flight: p99 of the loop's delay 0.43-0.49 s), and the input
 * lease was let go in some runs of a scratch script, though NATS answered every renewal at once:
 * - a renewal was sent a whole period after its predecessor's answer was *read*, so a late read stretched
 *   the time between two renewals toward the lease's validity (70% of its TTL);
 * - timers fire at the start of a turn of the event loop and sockets are read after them, so an attempt's
 *   deadline (and the client's request timeout under it) ran before a renewal answered in time was read,
 *   and took the process's lateness for NATS's.
 * Now renewals are counted from when the previous one was sent, a deadline decides once pending answers are
 * read, and the client's own timeout is the lease's TTL: no lapse in 11 runs of the same script. The
 * watchdog that lets the lease go when its validity passes with no renewal decides after the sockets are
 * read as well.
 */
import { describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { connect } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { withDeadline } from '../../src/nats/kv-util.ts';
import { Lease } from '../../src/nats/lease.ts';
import { startNatsServer } from '../harness/nats-server.ts';
import { eventually } from '../harness/eventually.ts';

const TTL_MS = 2_000;
const silent = pino({ level: 'silent' });

/** Keeps this thread busy for `ms`, as a long batch or a pause of the garbage collector does. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

describe('a lease on a busy process', () => {
  it('gives an answer that came in time its due when the process was too busy to read it before the deadline', async () => {
    await using server = await startNatsServer();
    const nc = await connect({ servers: server.url, noAsyncTraces: true });
    try {
      // The server answers at once; the process is busy for 300 ms once the request is on its way, past the
      // 100 ms deadline. The deadline's timer runs first in the next turn, the answer is read after it.
      const answer = nc.request('$JS.API.INFO', undefined, { timeout: 5_000 });
      const bounded = withDeadline(answer, 100, 'info');
      // The client writes what it sends on a microtask: let it go out, then be busy before reading anything.
      await Promise.resolve();
      busy(300);
      await expect(bounded).resolves.toBeDefined();
      // One that does not come in time still fails at its deadline.
      const never = new Promise<never>(() => {});
      await expect(withDeadline(never, 100, 'nothing')).rejects.toThrow(
        'nothing: no answer from NATS within 100 ms',
      );
    } finally {
      await nc.close();
    }
  });

  it("keeps the lease when a renewal answered in time is read after its predecessor's validity has passed", async () => {
    await using server = await startNatsServer();
    const nc = await connect({ servers: server.url, noAsyncTraces: true });
    try {
      const kv = await new Kvm(nc).create('leases', { history: 1 });
      const update = kv.update.bind(kv);
      let renewals = 0;
      // The third renewal goes out, and the process is busy for 1 s before reading anything: NATS answers at
      // once; the renewal before was sent 0.5 s earlier, so its validity (1.4 s) passes meanwhile, and the
      // watchdog's timer comes due before the answer is read. The new renewal's own validity still holds.
      vi.spyOn(kv, 'update').mockImplementation((...args: Parameters<KV['update']>) => {
        const answer = update(...args);
        if (++renewals === 3) setImmediate(() => busy(1_000));
        return answer;
      });
      const lease = new Lease(kv, 'inputs', 'instance-a', TTL_MS, silent);
      const changes: boolean[] = [];
      lease.onChange((held) => changes.push(held));
      lease.start();
      await eventually(() => expect(renewals).toBeGreaterThanOrEqual(5));
      expect(changes).toEqual([true]);
      expect(lease.valid()).toBe(true);
      await lease.release();
    } finally {
      await nc.close();
    }
  });

  it('sends each renewal a quarter of the TTL after the last one was sent, however late its answer is read', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'performance'] });
    try {
      let revision = 1;
      const sent: number[] = [];
      // Answers read 400 ms after each renewal is sent (a busy process, or a slow network): in time for the
      // attempt's deadline (500 ms).
      const kv = {
        create: async () => revision,
        get: async () => null,
        update: (_key: string, _value: string, expected: number) => {
          sent.push(performance.now());
          return new Promise<number>((resolve) =>
            setTimeout(() => resolve(expected === revision ? ++revision : revision), 400),
          );
        },
        delete: async () => undefined,
      } as unknown as KV;
      const lease = new Lease(kv, 'inputs', 'instance-a', TTL_MS, silent);
      const changes: boolean[] = [];
      lease.onChange((held) => changes.push(held));
      lease.start();
      await vi.advanceTimersByTimeAsync(5_000);
      expect(changes).toEqual([true]);
      const gaps = sent.slice(1).map((t, i) => Math.round(t - sent[i]!));
      expect(gaps.length).toBeGreaterThanOrEqual(8);
      // Every TTL / 4 from the send before (it was: 500 ms after the answer was read, 900 ms apart).
      for (const gap of gaps) expect(gap).toBe(TTL_MS / 4);
      const released = lease.release();
      await vi.advanceTimersByTimeAsync(1_000);
      await released;
    } finally {
      vi.useRealTimers();
    }
  });
});
