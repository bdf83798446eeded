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
