import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import type { KV, Kvm, KvOptions } from '@nats-io/kv';
import { nanos } from '@nats-io/transport-node';
import type { NatsNames } from './names.ts';

/** Retention and redelivery settings; the defaults suit production, tests shorten the waits. */
export interface JetStreamSettings {
  /** How long inputs stay in their stream (for replay and audit). */
  readonly inputMaxAgeMs: number;
  /** How long output events stay in the audit log. */
  readonly eventMaxAgeMs: number;
  /** Within this window a republished event id is dropped by JetStream (crash between publish and bookkeeping). */
  readonly duplicateWindowMs: number;
  /** An unacknowledged delivery is redelivered after this long (a crashed instance's messages). */
  readonly ackWaitMs: number;
  /** Deliveries in flight per consumer: the depth of the pipeline (per model, inputs are limited to 32). */
  readonly maxAckPending: number;
  /** How long the instance taking the inputs may go silent before another one takes over. */
  readonly leaseTtlMs: number;
}

export const DEFAULT_JETSTREAM_SETTINGS: JetStreamSettings = {
  inputMaxAgeMs: 7 * 24 * 3600_000,
  eventMaxAgeMs: 90 * 24 * 3600_000,
  duplicateWindowMs: 15 * 60_000,
  ackWaitMs: 30_000,
  maxAckPending: 1024,
  leaseTtlMs: 2_000,
};

function isApiError(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}

/** Creates the stream, or adds our subjects to an existing one; never removes anything. */
async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string; subjects: string[] },
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const info = await jsm.streams.info(config.name);
      const missing = config.subjects.filter((s) => !info.config.subjects?.includes(s));
      if (missing.length > 0)
        await jsm.streams.update(config.name, {
          ...info.config,
          subjects: [...(info.config.subjects ?? []), ...missing],
        });
      return;
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.StreamNotFound) || attempt > 0) throw error;
    }
    try {
      await jsm.streams.add(config);
      return;
    } catch (error) {
      // Another instance created it at the same moment: look again.
      if (attempt > 0) throw error;
    }
  }
}

export async function ensureStreams(
  jsm: JetStreamManager,
  names: NatsNames,
  settings: JetStreamSettings,
  partitioned = false,
): Promise<void> {
  const p = names.prefix;
  await ensureStream(jsm, {
    name: names.inputStream,
    // Partitioned: what the server's mapping puts on `<prefix>.part.<k>.<kind>.<model_id>` too.
    subjects: partitioned ? [`${p}.in.>`, `${p}.part.>`] : [`${p}.in.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    max_age: nanos(settings.inputMaxAgeMs),
    duplicate_window: nanos(Math.min(settings.duplicateWindowMs, settings.inputMaxAgeMs)),
  });
  await ensureStream(jsm, {
    name: names.eventStream,
    subjects: [`${p}.evt.>`, `${p}.int.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    max_age: nanos(settings.eventMaxAgeMs),
    duplicate_window: nanos(Math.min(settings.duplicateWindowMs, settings.eventMaxAgeMs)),
  });
}

/**
 * What nats-server 2.9 answers the loser of two identical stream creations sent at the same moment, for a
 * moment: the name in use (10058), or the subjects overlapping with the stream being made (10065).
 */
const CREATED_AT_THE_SAME_MOMENT: ReadonlySet<number> = new Set([10058, 10065]);
const BUCKET_ATTEMPTS = 5;

/**
 * Opens a KV bucket, creating it if it does not exist. Instances that start together race to create the
 * same buckets, and the server can refuse the loser's identical request for a moment (seen in 5 of 240
 * concurrent creations): it is asked again, a little later, a few times.
 */
async function ensureBucket(kvm: Kvm, name: string, options: Partial<KvOptions>): Promise<KV> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await kvm.create(name, options);
    } catch (error) {
      const raced = error instanceof JetStreamApiError && CREATED_AT_THE_SAME_MOMENT.has(error.code);
      if (!raced || attempt >= BUCKET_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25 * attempt));
    }
  }
}

/** Warden's KV buckets: actor state, training state, the registry, the leases, and the actors' timelines. */
export async function ensureBuckets(
  kvm: Kvm,
  names: NatsNames,
  settings: JetStreamSettings,
): Promise<{ actorKv: KV; trainingKv: KV; registryKv: KV; leaseKv: KV; timelineKv: KV }> {
  const [actorKv, trainingKv, registryKv, leaseKv, timelineKv] = await Promise.all([
    ensureBucket(kvm, names.actorBucket, { history: 1, storage: 'file' }),
    ensureBucket(kvm, names.trainingBucket, { history: 10, storage: 'file' }),
    ensureBucket(kvm, names.registryBucket, { history: 10, storage: 'file' }),
    ensureBucket(kvm, names.leaseBucket, { history: 1, storage: 'file', ttl: settings.leaseTtlMs }),
    ensureBucket(kvm, names.timelineBucket, { history: 1, storage: 'file' }),
  ]);
  return { actorKv, trainingKv, registryKv, leaseKv, timelineKv };
}

export interface DurableSpec {
  readonly durable: string;
  readonly stream: string;
  /** One filter subject: nats-server 2.9 has no multi-filter consumers. */
  readonly filter: string;
  /** `all` for work that must not be missed; `new` for feeds that would otherwise replay history. */
  readonly deliver: 'all' | 'new';
}

/** Creates the durable pull consumer, or brings its limits in line with the settings. */
export async function ensureDurable(
  jsm: JetStreamManager,
  spec: DurableSpec,
  settings: JetStreamSettings,
): Promise<void> {
  const limits = { ack_wait: nanos(settings.ackWaitMs), max_ack_pending: settings.maxAckPending };
  try {
    const info = await jsm.consumers.info(spec.stream, spec.durable);
    if (info.config.filter_subject !== spec.filter) {
      throw new Error(
        `consumer ${spec.durable} on ${spec.stream} filters ${info.config.filter_subject}, expected ${spec.filter}`,
      );
    }
    if (info.config.ack_wait !== limits.ack_wait || info.config.max_ack_pending !== limits.max_ack_pending) {
      await jsm.consumers.update(spec.stream, spec.durable, limits);
    }
    return;
  } catch (error) {
    if (!isApiError(error, JetStreamApiCodes.ConsumerNotFound)) throw error;
  }
  await jsm.consumers.add(spec.stream, {
    durable_name: spec.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: spec.deliver === 'all' ? DeliverPolicy.All : DeliverPolicy.New,
    filter_subject: spec.filter,
    max_deliver: -1,
    ...limits,
  });
}
