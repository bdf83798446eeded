/**
 * Instances that start together on a new deployment race to create the same streams and KV buckets, and
 * nats-server 2.9 can refuse the loser's identical request for a moment ("subjects overlap with an existing
 * stream"). Seen in the chaos tests: one of three Warden processes started at once exited before it was
 * ready. Every set-up of a race must succeed, on the same streams and buckets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { natsNames } from '../../src/nats/names.ts';
import { DEFAULT_JETSTREAM_SETTINGS, ensureBuckets, ensureStreams } from '../../src/nats/setup.ts';
import { startNatsServer, type NatsServer } from '../harness/nats-server.ts';

const INSTANCES = 6;
const DEPLOYMENTS = 40;

describe('set-up of instances starting together', () => {
  let server: NatsServer;
  let connections: NatsConnection[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
    connections = await Promise.all(
      Array.from({ length: INSTANCES }, () => connect({ servers: server.url })),
    );
  });

  afterAll(async () => {
    for (const nc of connections) await nc.close();
    await server?.[Symbol.asyncDispose]();
  });

  it(`succeeds for each of ${INSTANCES} instances, on ${DEPLOYMENTS} new deployments`, async () => {
    const failures: string[] = [];
    for (let d = 0; d < DEPLOYMENTS; d++) {
      const names = natsNames(`race${d}`);
      const results = await Promise.allSettled(
        connections.map(async (nc) => {
          await ensureStreams(await jetstreamManager(nc), names, DEFAULT_JETSTREAM_SETTINGS, true);
          const buckets = await ensureBuckets(new Kvm(jetstream(nc)), names, DEFAULT_JETSTREAM_SETTINGS);
          return (await buckets.actorKv.status()).streamInfo.config.name;
        }),
      );
      for (const r of results) if (r.status === 'rejected') failures.push(`race${d}: ${String(r.reason)}`);
      const streams = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      expect(new Set(streams)).toEqual(new Set([`KV_${names.actorBucket}`]));
    }
    expect(failures).toEqual([]);
  }, 120_000);
});
