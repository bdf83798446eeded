/**
 * A lease (the input lease, each partition's) let go during a NATS outage is taken back as soon as NATS
 * answers again. The attempt to take it that was sent while the server was away is never answered;
 * attempts follow one another, so before this was bounded the lease waited out the client's whole request
 * timeout (5 s by default) after the server was back, and so did the inputs behind it.
 */
import { describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Lease } from '../../src/nats/lease.ts';
import { Partitions } from '../../src/nats/partitions.ts';
import { startNatsServer } from '../harness/nats-server.ts';
import { eventually } from '../harness/eventually.ts';

const TTL_MS = 2_000;

/**
 * A lease bucket (entries expire after the TTL) on a connection that reconnects by itself and gives a
 * request a minute to be answered: an attempt that waits for its answer would hold the lease back far
 * beyond the tests' bounded waits.
 */
async function slowAnsweringLeases(url: string) {
  const nc = await connect({
    servers: url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
    noAsyncTraces: true,
  });
  const kv = await new Kvm(jetstream(nc, { timeout: 60_000 })).create('leases', { ttl: TTL_MS, history: 1 });
  return { nc, kv };
}

describe('a lease across a NATS outage longer than its validity', () => {
  it('is taken back once NATS answers again, not after the request timeout of an attempt sent meanwhile', async () => {
    await using server = await startNatsServer();
    const { nc, kv } = await slowAnsweringLeases(server.url);
    try {
      const attemptsToTake = vi.spyOn(kv, 'create');
      const lease = new Lease(kv, 'inputs', 'instance-a', TTL_MS, pino({ level: 'silent' }));
      const changes: boolean[] = [];
      lease.onChange((held) => changes.push(held));
      lease.start();
      await eventually(() => expect(lease.valid()).toBe(true));
      const epoch = lease.epoch;

      for (let outage = 0; outage < 2; outage++) {
        await server.stop();
        // No renewal gets through: the holder lets the lease go before anyone else could take it.
        await eventually(() => expect(lease.isHeld).toBe(false), { timeoutMs: TTL_MS * 2 });
        // An attempt to take it again goes out while the server is away, and finds no answer.
        const before = attemptsToTake.mock.calls.length;
        await eventually(() => expect(attemptsToTake.mock.calls.length).toBeGreaterThan(before));
        await server.start();
        await eventually(() => expect(lease.valid()).toBe(true), { timeoutMs: 3_000 });
      }
      // Its entry expired meanwhile (more than the TTL since its last renewal): taken anew, a later epoch.
      expect(lease.epoch).toBeGreaterThan(epoch);
      expect(changes).toEqual([true, false, true, false, true]);
      await lease.release();
    } finally {
      await nc.close();
    }
  }, 30_000);

  it('takes back its own entry after a late renewal: the same epoch if nobody wrote it since, a new one if someone did', async () => {
    await using server = await startNatsServer();
    const nc = await connect({ servers: server.url, noAsyncTraces: true });
    try {
      // Entries that never expire: what is tested is the holder's own timing, not the bucket's.
      const kv = await new Kvm(nc).create('leases', { history: 1 });
      const lease = new Lease(kv, 'inputs', 'instance-a', TTL_MS, pino({ level: 'silent' }));
      lease.start();
      await eventually(() => expect(lease.valid()).toBe(true));
      const epoch = lease.epoch;
      const update = kv.update.bind(kv);
      // Renewals that get no answer: the holder lets the lease go before anyone else could take it.
      const unanswered = vi.spyOn(kv, 'update').mockImplementation(() => new Promise<number>(() => {}));
      await eventually(() => expect(lease.isHeld).toBe(false), { timeoutMs: TTL_MS * 2 });
      unanswered.mockImplementation(update);
      await eventually(() => expect(lease.valid()).toBe(true), { timeoutMs: 3_000 });
      expect(lease.epoch).toBe(epoch); // nobody wrote it since its last renewal

      unanswered.mockImplementation(() => new Promise<number>(() => {}));
      await eventually(() => expect(lease.isHeld).toBe(false), { timeoutMs: TTL_MS * 2 });
      // Written since its last renewal, with its own name (a renewal given up that went through late, after
      // another instance may have held the key): taken back under a new epoch.
      const written = await kv.put('inputs', 'instance-a');
      unanswered.mockImplementation(update);
      await eventually(() => expect(lease.valid()).toBe(true), { timeoutMs: 3_000 });
      expect(lease.epoch).toBeGreaterThanOrEqual(written);
      expect(lease.epoch).toBeGreaterThan(epoch);
      await lease.release();
    } finally {
      await nc.close();
    }
  }, 30_000);

  it('partitions let go in an outage are all taken again once NATS answers, not after a request sent meanwhile times out', async () => {
    await using server = await startNatsServer();
    const { nc, kv } = await slowAnsweringLeases(server.url);
    try {
      const heartbeats = vi.spyOn(kv, 'put');
      // Work that stops at once: what is tested is taking the partitions, not their consumers.
      const partitions = new Partitions(
        {
          count: 4,
          kv,
          holder: 'instance-a',
          instanceId: 'a',
          ttlMs: TTL_MS,
          open: () => ({ stop: async () => undefined }),
        },
        pino({ level: 'silent' }),
      );
      partitions.start();
      await eventually(() => expect(partitions.list()).toEqual([0, 1, 2, 3]));
      for (let outage = 0; outage < 2; outage++) {
        await server.stop();
        await eventually(() => expect(partitions.list()).toEqual([]), { timeoutMs: TTL_MS * 2 });
        // A heartbeat goes out while the server is away, and finds no answer.
        const before = heartbeats.mock.calls.length;
        await eventually(() => expect(heartbeats.mock.calls.length).toBeGreaterThan(before));
        await server.start();
        await eventually(() => expect(partitions.list()).toEqual([0, 1, 2, 3]), { timeoutMs: 3_000 });
      }
      await partitions.close();
    } finally {
      await nc.close();
    }
  }, 30_000);
});
