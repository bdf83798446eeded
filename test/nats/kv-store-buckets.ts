import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import pino, { type Logger } from 'pino';
import type { TimelineEntry } from '../../src/actors/ports.ts';
import { DEFAULT_KV_STORE_OPTIONS, KvStore, type KvStoreOptions } from '../../src/nats/kv-store.ts';

/** The three buckets a KV store works on: actor state, training state, timelines. */
export interface StoreBuckets {
  readonly kv: KV;
  readonly trainingKv: KV;
  readonly timelineKv: KV;
}

/** The store's buckets, fresh, under `name`. */
export async function storeBuckets(nc: NatsConnection, name: string): Promise<StoreBuckets> {
  const kvm = new Kvm(jetstream(nc));
  return {
    kv: await kvm.create(`${name}_actors`, { history: 1 }),
    trainingKv: await kvm.create(`${name}_training`, { history: 1 }),
    timelineKv: await kvm.create(`${name}_timeline`, { history: 1 }),
  };
}

/** A KV store over `buckets` that publishes nothing, with `options` over the defaults. */
export function openStore(
  buckets: StoreBuckets,
  options: Partial<KvStoreOptions> = {},
  logger: Logger = pino({ level: 'silent' }),
): Promise<KvStore> {
  return KvStore.open(
    buckets.kv,
    buckets.trainingKv,
    buckets.timelineKv,
    { ...DEFAULT_KV_STORE_OPTIONS, publish: async () => undefined, ...options },
    logger,
  );
}

/** Timeline line `n` of model `key`: an evaluation that found a regression, at n seconds. */
export const timelineLine = (n: number, key = 'p'): TimelineEntry => ({
  at: n * 1000,
  kind: 'model',
  key,
  event: 'EVALUATED',
  outcome: 'regression',
  from: 'healthy',
  to: 'healthy',
  by: null,
  summary: `line ${n}`,
});
