import type { Logger } from 'pino';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { Config } from '../config/schema.ts';
import type { EventBus, ModelRegistry, StateStore } from '../actors/ports.ts';
import type { Warden } from '../warden.ts';
import { ValidationError, WardenError, type ErrorBody } from '../domain/errors.ts';
import { isToken } from '../domain/model-ref.ts';
import { RecentIds } from '../domain/recent-ids.ts';
import { connectNats, connectionOptions, describeServers } from './connection.ts';
import { JetStreamWriter, kvWrites } from './js-writer.ts';
import { JETSTREAM_REQUESTS, KV_REQUESTS, withLostAnswers } from './lost-answers.ts';
import { natsNames, type NatsNames } from './names.ts';
import { DEFAULT_JETSTREAM_SETTINGS, ensureBuckets, ensureStreams, type JetStreamSettings } from './setup.ts';
import { NatsBus, type NatsBusOptions, type PartitionedSpec } from './bus.ts';
import { KvStore, DEFAULT_KV_STORE_OPTIONS, type KvStoreOptions, type WriteFence } from './kv-store.ts';
import { Partitions } from './partitions.ts';
import { partitionOf, partitionedSubject, unpartition } from './partitions-map.ts';
import type { ActorKind } from '../actors/ports.ts';
import { KvRegistry } from './registry.ts';
import { CommandResponder } from './commands.ts';
import {
  DEFAULT_RETRY,
  type IntakeHooks,
  type IntakeOptions,
  type Place,
  type RetrySettings,
} from './intake.ts';
import { Lease } from './lease.ts';
import { hostname } from 'node:os';
import { connect, nuid, type NatsConnection } from '@nats-io/transport-node';

export { natsNames, type NatsNames } from './names.ts';
export { runCommand, type CommandReply } from './commands.ts';
export type { RegistryEntry } from './registry.ts';
export type { TrainingEntry } from './training-state.ts';
export type { JetStreamSettings } from './setup.ts';
export { partitionMapping, partitionOf } from './partitions-map.ts';

/** How long the next input of a model waits for its rollback to finish before it is handed over anyway. */
const ROLLBACK_WAIT_MS = 60_000;

/** How many refused inputs the transport remembers so as to count each once. */
const REFUSALS_REMEMBERED = 10_000;
/** How long Warden's own JetStream writes wait for an answer: nats.js's default for JetStream requests. */
const JETSTREAM_TIMEOUT_MS = 5_000;

/** The input kinds Warden takes; any other kind token is counted and published as `unknown`. */
const INPUT_KINDS = new Set(['promotion', 'evaluation']);

/** Inputs larger than this are refused before parsing (evaluations are a few hundred bytes). */
export const DEFAULT_MAX_INPUT_BYTES = 64 * 1024;

export interface NatsAdapterHooks {
  /** Counts inputs refused by the transport itself (too large, unknown subject); Warden counts the rest. */
  readonly onRejected?: (kind: string, error: WardenError) => void;
  readonly maxInputBytes?: number;
  readonly jetstream?: Partial<JetStreamSettings>;
  readonly store?: Partial<Omit<KvStoreOptions, 'publish' | 'afterClose' | 'fence'>>;
  /** How often an input failing for a reason of its own is tried before it goes to the dead letter. */
  readonly retry?: Partial<RetrySettings>;
  /** Counts NATS operations that failed (timeouts, disconnections) and were retried. */
  readonly onTransientFailure?: (what: string, error: unknown) => void;
  /** How long close() waits for in-flight work and for the connection to drain before closing it. */
  readonly closeDeadlineMs?: number;
  /** The NATS client name (shows in the server's monitoring). */
  readonly clientName?: string;
}

export interface NatsAdapters {
  readonly bus: EventBus;
  readonly store: StateStore;
  readonly registry: ModelRegistry;
  readonly names: NatsNames;
  /** One line for the start-up log. */
  readonly endpoint: string;
  /** Connected to NATS (false while it reconnects). */
  ready(): boolean;
  /** `active` while this instance takes inputs (holds a partition or the control lease); `standby` otherwise. */
  role(): 'active' | 'standby';
  /** The input partitions this instance takes now (nats.partitions above 1; else [0] while active). */
  partitions(): readonly number[];
  /** Starts answering commands on `<prefix>.cmd.>` with this Warden. */
  attach(warden: Warden): Promise<void>;
  /** Stops answering commands (first step of an orderly shutdown). */
  detach(): Promise<void>;
  /**
   * Detaches, closes bus and store, and drains the connection. Warden.stop() closes bus and store itself;
   * the connection is drained once both are closed, so `close` is only needed without a Warden.
   */
  close(): Promise<void>;
}

/**
 * What Warden subscribes to that must survive its restarts and be handled once across instances: inputs,
 * the rollback events training configs act on, the internal pause acknowledgements, and alerts (so that a
 * webhook fires once, not once per instance). Rollback events and acknowledgements start from the
 * beginning of the stream when their consumer is first made (replays are idempotent); alerts start now.
 */
function durableSpecs(
  names: NatsNames,
  partitions: number,
  maxBytes: number,
  retry: RetrySettings,
  inputLease: Lease,
  extra: Pick<IntakeOptions, 'onReconnect' | 'onTransientFailure' | 'placeOf'>,
): NatsBusOptions['durables'] {
  const p = names.prefix;
  const common = {
    maxBytes,
    retry,
    onReconnect: extra.onReconnect,
    onTransientFailure: extra.onTransientFailure,
  };
  // Partitioned (nats.partitions above 1): these take what reached the stream outside any partition, under
  // the control lease: subjects Warden refuses, and inputs the server did not map (moved to their partition).
  const strays = partitions > 1 ? { placeOf: extra.placeOf } : {};
  return [
    {
      ...common,
      ...strays,
      durable: names.durable('inputs'),
      stream: names.inputStream,
      filter: `${p}.in.>`,
      deliver: 'all',
      stampEventIds: true,
      // Order per model matters (a promotion, then the evaluations of that version): one taker at a time,
      // one input per model at a time, resuming from the acknowledgement floor on every take-over.
      lease: inputLease,
      ordered: true,
      positions: partitions === 1,
    },
    // The rollback events and pause acknowledgements change state too: taken by the same instance, in
    // order per model, so that a frozen instance's late delivery cannot overtake a later one.
    {
      ...common,
      durable: names.durable('rolled_back'),
      stream: names.eventStream,
      filter: `${p}.evt.promotion_rolled_back.*`,
      deliver: 'all',
      stampEventIds: false,
      lease: inputLease,
      ordered: true,
      // The instance that commits a rollback event and holds this lease pauses the training config at
      // once, in process (the pause is idempotent by rollback id; the durable's delivery then only acks).
      handOff: true,
    },
    {
      ...common,
      ...strays,
      durable: names.durable('pause_acknowledged'),
      stream: names.eventStream,
      filter: `${p}.int.pause_acknowledged.*`,
      deliver: 'all',
      stampEventIds: false,
      lease: inputLease,
      ordered: true,
    },
    {
      ...common,
      durable: names.durable('alerts'),
      stream: names.eventStream,
      filter: `${p}.evt.alert.*`,
      deliver: 'new',
      stampEventIds: false,
    },
  ];
}

/**
 * Partitioned (nats.partitions above 1): per partition, the inputs (`<prefix>.part.<k>.>`, mapped there by
 * the server) and the pause acknowledgements of its models (`<prefix>.int.pause_acknowledged.<k>.*`), each
 * consumed in order per model by the instance holding the partition's lease.
 */
function partitionedSpecs(
  names: NatsNames,
  maxBytes: number,
  retry: RetrySettings,
  extra: Pick<IntakeOptions, 'onReconnect' | 'onTransientFailure' | 'placeOf' | 'subjectOf'>,
): PartitionedSpec[] {
  const p = names.prefix;
  const common = { maxBytes, retry, ...extra, ordered: true, deliver: 'all' as const };
  return [
    {
      ...common,
      covers: `${p}.in.>`,
      durableOf: (k) => names.durable(`inputs_${k}`),
      stream: names.inputStream,
      filterOf: (k) => `${p}.part.${k}.>`,
      stampEventIds: true,
      positions: true,
    },
    {
      ...common,
      covers: `${p}.int.pause_acknowledged.*`,
      durableOf: (k) => names.durable(`pause_acknowledged_${k}`),
      stream: names.eventStream,
      filterOf: (k) => `${p}.int.pause_acknowledged.${k}.*`,
      stampEventIds: false,
    },
  ];
}

/**
 * The kind of an input subject (`<prefix>.in.<kind>.<id>`) as counted and published: `promotion`,
 * `evaluation`, or `unknown` for anything else, so that invented kinds add no metric series or subjects.
 */
export function kindOf(subject: string, prefix: string): string {
  const tokens = subject.split('.');
  const skip = prefix.split('.').length;
  const kind = tokens[skip + 1] ?? '';
  return tokens[skip] === 'in' && INPUT_KINDS.has(kind) ? kind : 'unknown';
}

/**
 * The actor bucket over a connection of its own, for the store's first read of it (see
 * KvStoreOptions.firstRead), closed once that read is done; null (the read then shares the connection)
 * when it cannot be opened.
 */
async function firstReadOf(
  settings: Config['nats'],
  bucket: string,
  clientName: string,
  log: Logger,
): Promise<{ kv: KV; done: () => void } | null> {
  let nc: NatsConnection | null = null;
  try {
    nc = await connect({
      ...connectionOptions(settings, `${clientName}-first-read`),
      waitOnFirstConnect: false,
    });
    const kv = await new Kvm(jetstream(nc)).open(bucket);
    const opened = nc;
    return { kv, done: () => void opened.close().catch(() => undefined) };
  } catch (error) {
    log.warn(
      { err: error },
      'could not open a second connection for the first read of the actor bucket; using the main one',
    );
    await nc?.close().catch(() => undefined);
    return null;
  }
}

/** The config key of a model for an alert (the model id when Warden does not know the model). */
function configKeyOf(warden: Warden | null, modelId: string): string {
  try {
    return warden?.status(modelId).models[0]?.config_key ?? modelId;
  } catch {
    return modelId; // not a model id, or an unknown model
  }
}

const truncate = (raw: string): string => (raw.length > 1024 ? `${raw.slice(0, 1024)}…` : raw);
const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * NATS mode: JetStream streams for inputs and output events, KV for state, the registry and what trainers
 * read, durable consumers shared by every instance, and request/reply commands. Creates whatever streams,
 * buckets and consumers are missing (nats-server 2.9 or later).
 */
export async function createNatsAdapters(
  config: Config,
  logger: Logger,
  hooks: NatsAdapterHooks = {},
): Promise<NatsAdapters> {
  const log = logger.child({ component: 'nats' });
  const names = natsNames(config.nats.prefix);
  const p = names.prefix;
  const settings: JetStreamSettings = { ...DEFAULT_JETSTREAM_SETTINGS, ...hooks.jetstream };
  const maxBytes = hooks.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES;

  const link = await connectNats(config.nats, log, hooks.clientName ?? 'warden');
  let bus: NatsBus | null = null;
  /** Closes the first read's own connection (see firstReadOf), if a start that fails opened it. */
  let closeFirstRead: (() => void) | null = null;
  try {
    const js = jetstream(link.nc);
    const jsm = await jetstreamManager(link.nc);
    await ensureStreams(jsm, names, settings, config.nats.partitions > 1);
    const kvm = new Kvm(js);
    const buckets = await ensureBuckets(kvm, names, settings);
    // A key request whose connection is lost fails at once, not after the client's request timeout.
    const [actorKv, trainingKv, registryKv, leaseKv, timelineKv] = [
      buckets.actorKv,
      buckets.trainingKv,
      buckets.registryKv,
      buckets.leaseKv,
      buckets.timelineKv,
    ].map((kv) => withLostAnswers(kv, KV_REQUESTS, link.answers)) as [KV, KV, KV, KV, KV];
    // Warden's own JetStream writes (state, registry pointers, events), bounded by the connection they went
    // out on, as the library's requests are (see LostAnswers).
    const writer = new JetStreamWriter(link.nc, JETSTREAM_TIMEOUT_MS);
    const watchAnswer = <T>(request: Promise<T>): Promise<T> => link.answers.watch(request);
    const holder = `${hostname()}:${process.pid}:${nuid.next()}`;
    // The control lease: training configs, rollback events, commands, and with one partition every input.
    const inputLease = new Lease(leaseKv, 'inputs', holder, settings.leaseTtlMs, log);
    const partitionCount = config.nats.partitions;
    const partitioned = partitionCount > 1;
    let partitions: Partitions | null = null;
    /** What fences an actor's writes: its model's partition lease (partitioned), else the control lease. */
    const leaseFor = (kind: ActorKind, key: string): Lease | null =>
      partitioned && kind === 'model'
        ? (partitions?.lease(partitionOf(key, partitionCount)) ?? null)
        : inputLease;
    const notHeld: WriteFence = { valid: () => false, isHeld: false, epoch: 0 };
    const fenceFor = (kind: ActorKind, key: string): WriteFence => leaseFor(kind, key) ?? notHeld;
    const ackPrefix = `${p}.int.pause_acknowledged.`;
    /** Where a partitioned input or pause acknowledgement belongs, when it is not there (see Intake.placeOf). */
    const placeOf = (subject: string): string | null => {
      const found = unpartition(p, subject);
      const plain = found?.subject ?? subject;
      if (plain.startsWith(`${p}.in.`)) {
        const [kind, id, ...more] = plain.slice(p.length + 4).split('.');
        if (kind === undefined || id === undefined || more.length > 0) return null;
        const k = partitionOf(id, partitionCount);
        return found?.partition === k ? null : partitionedSubject(p, k, kind, id);
      }
      if (plain.startsWith(ackPrefix)) {
        const id = plain.slice(ackPrefix.length);
        const k = partitionOf(id, partitionCount);
        return id.includes('.') || found?.partition === k ? null : `${ackPrefix}${k}.${id}`;
      }
      return null;
    };
    const retry: RetrySettings = { ...DEFAULT_RETRY, ...hooks.retry };
    const transientFailure = (what: string, error: unknown) => {
      hooks.onTransientFailure?.(what, error);
      log.debug({ err: error, what }, 'NATS operation failed; retrying');
    };

    let responder: CommandResponder | null = null;
    let attached: Warden | null = null;
    const open = { bus: true, store: true };
    const drainIfDone = async (): Promise<void> => {
      if (!open.bus && !open.store && responder === null) await link.close();
    };

    /**
     * The inputs refused (or dead-lettered) here and counted, by their stream place: one that is refused
     * again (a redelivery, a retry after its refusal could not be published, a group of inputs going one at
     * a time after one of them failed) is counted once, as its refusal is published once.
     */
    const refusalsCounted = new RecentIds(REFUSALS_REMEMBERED);

    /**
     * Inputs the transport refuses itself go out like Warden's own refusals, and are counted, under a
     * bounded kind. The message id (the input's stream place) keeps a redelivery from publishing it twice.
     */
    const reject = async (subject: string, error: WardenError, raw: string, place: Place): Promise<void> => {
      const kind = kindOf(subject, p);
      const msgId = `rejected:${place.streamId}:${place.seq}`;
      if (refusalsCounted.add(msgId)) hooks.onRejected?.(kind, error);
      log.warn({ subject: subject.slice(0, 300), code: error.code }, `rejected ${kind}: ${error.message}`);
      const body: { subject: string; error: ErrorBody; raw: string } = {
        subject,
        error: error.toJSON(),
        raw: truncate(raw),
      };
      await bus!.publish(`${p}.evt.rejected.${kind}`, body, { msgId });
    };

    const intakeHooks: IntakeHooks = {
      tooLarge: (subject, bytes, head, place) =>
        reject(
          subject,
          new ValidationError(kindOf(subject, p), [
            `(root): expected a payload of at most ${maxBytes} bytes, received ${bytes} bytes`,
          ]),
          `${head}…`,
          place,
        ),
      unroutable: (message, place) =>
        reject(
          message.subject,
          new ValidationError('input', [
            `subject: expected ${p}.in.promotion.<model_id> or ${p}.in.evaluation.<model_id> (one token of letters, digits, "_" or "-"), received "${truncate(message.subject)}"`,
          ]),
          message.raw ?? '',
          place,
        ),
      deadLetter: async (message, place, attempts, error) => {
        const kind = kindOf(message.subject, p);
        const modelId = message.subject.slice(message.subject.lastIndexOf('.') + 1);
        const cause = error instanceof WardenError ? error : new WardenError('internal', errorText(error));
        const eventId = `dead_letter:${place.streamId}:${place.seq}`;
        const timestamp = Date.now() / 1000;
        if (refusalsCounted.add(eventId)) hooks.onRejected?.(kind, cause);
        await natsBus.publish(
          `${p}.evt.dead_letter.${kind}`,
          {
            event_id: eventId,
            timestamp,
            subject: message.subject,
            stream_sequence: place.seq,
            attempts,
            error: { code: cause.code, message: errorText(error) },
            raw: truncate(message.raw ?? ''),
          },
          { msgId: eventId },
        );
        const configKey = configKeyOf(attached, modelId);
        await natsBus.publish(
          `${p}.evt.alert.${isToken(modelId) ? modelId : 'unknown'}`,
          {
            event_id: `alert:${eventId}`,
            timestamp,
            model_id: modelId,
            config_key: configKey,
            level: 'critical',
            kind: 'input_dead_lettered',
            message: `input ${message.subject} (stream sequence ${place.seq}) failed ${attempts} times and was moved to ${p}.evt.dead_letter.${kind}: ${errorText(error)}`,
          },
          { msgId: `alert:${eventId}` },
        );
      },
      // Applied before (a redelivery after a crash, a take-over or a reconnection): its position is at or
      // below the model's committed one. The event id check covers a producer that sends an input twice.
      alreadyApplied: (message, modelId) => {
        if (message.position !== undefined && message.position <= kvStore.appliedPosition(modelId))
          return true;
        const eventId = (message.data as { event_id?: unknown } | null)?.event_id;
        return typeof eventId === 'string' && kvStore.hasApplied(modelId, eventId);
      },
      // The next input of a model waits while its rollback is in flight (bounded: then it is kept in the
      // model's state and handed back after the rollback, as the runtime does for any input).
      ready: (modelId) => (isToken(modelId) ? kvStore.whenSettled(modelId, ROLLBACK_WAIT_MS) : null),
      // Group commit: the waiting inputs of a model go together until one starts its rollback (read from the
      // model as it is now, inputs applied but not yet committed); those after it wait for it, as above.
      mayGroup: (modelId) => {
        if (!attached || !isToken(modelId)) return false;
        // No such model yet: nothing to wait for.
        return attached.modelState(modelId) !== 'rollingBack';
      },
      // A key that is not a model id (a bad subject) has no state to claim: it is refused further on.
      claim: (modelId, epoch) => (isToken(modelId) ? kvStore.claim(modelId, epoch) : Promise.resolve()),
    };

    bus = new NatsBus(
      link.nc,
      withLostAnswers(js, JETSTREAM_REQUESTS, link.answers),
      jsm,
      {
        streamPrefixes: [`${p}.in.`, `${p}.evt.`, `${p}.int.`],
        publishToStream: (subject, data, msgId) =>
          watchAnswer(writer.publish(subject, data, msgId === undefined ? {} : { msgId })),
        streamOf: (subject) =>
          subject.startsWith(`${p}.in.`) || subject.startsWith(`${p}.part.`)
            ? `stream ${names.inputStream}`
            : `stream ${names.eventStream}`,
        durables: durableSpecs(names, partitionCount, maxBytes, retry, inputLease, {
          onReconnect: link.onReconnect,
          onTransientFailure: transientFailure,
          placeOf,
        }),
        ...(partitioned
          ? {
              partitioned: partitionedSpecs(names, maxBytes, retry, {
                onReconnect: link.onReconnect,
                onTransientFailure: transientFailure,
                placeOf,
                subjectOf: (subject) => unpartition(p, subject)?.subject ?? subject,
              }),
              // A pause acknowledgement goes to its model's partition.
              publishSubject: (subject: string) =>
                subject.startsWith(ackPrefix) && !subject.slice(ackPrefix.length).includes('.')
                  ? (placeOf(subject) ?? subject)
                  : subject,
            }
          : {}),
        settings,
        hooks: intakeHooks,
        maxBytes,
        connected: () => link.connected(),
        afterClose: async () => {
          await partitions?.close();
          open.bus = false;
          await drainIfDone();
        },
      },
      log,
    );
    const natsBus = bus;
    // (A first read given by the hooks, a test's, replaces this one: not opened then.)
    const firstRead = hooks.store?.firstRead
      ? null
      : await firstReadOf(config.nats, names.actorBucket, hooks.clientName ?? 'warden', log);
    closeFirstRead = firstRead && firstRead.done;
    const kvStore = await KvStore.open(
      actorKv,
      trainingKv,
      timelineKv,
      {
        ...DEFAULT_KV_STORE_OPTIONS,
        // The instance takes inputs before it has read every actor's value (KvStore.prefetch).
        loadInBackground: true,
        ...(firstRead ? { firstRead } : {}),
        ...hooks.store,
        publish: (entry) => natsBus.publish(entry.subject, entry.payload, { msgId: entry.id }),
        update: kvWrites(writer, actorKv, names.actorBucket, watchAnswer),
        fence: fenceFor,
        onTransientFailure: transientFailure,
        afterClose: async () => {
          open.store = false;
          await drainIfDone();
        },
      },
      log,
    );
    const registry = new KvRegistry(
      registryKv,
      transientFailure,
      {
        whenValid: (modelId, ms) => {
          const lease = leaseFor('model', modelId);
          return lease ? lease.whenValid(ms) : Promise.resolve(false);
        },
        holds: (modelId) => leaseFor('model', modelId)?.isHeld ?? false,
        closed: () => link.nc.isClosed(),
      },
      kvWrites(writer, registryKv, names.registryBucket, watchAnswer),
    );
    // A new holder claims at once the actors whose state needs it (KvStore.claimAll): from then on the
    // previous holder can write none of them, and the runtime here follows their latest state and runs what
    // it calls for (rollbacks, timers, and the registry pointer brought in line after a crash between a
    // commit and its registry write). Once per epoch: a lease taken back under the same epoch (a late
    // renewal let it go, and nobody took it in between) or kept through a reconnection had no other holder,
    // so there is nobody to fence and no state written elsewhere to follow. Claiming again there cost a
    // write per actor (10,000 writes for a second's stall at 10,000 models); what the lapse held back (a
    // timer come due, a rollback, a commit refused) is taken up by the runtime's own look every second and
    // the store's reclaim of that actor.
    const claimedEpoch = new WeakMap<Lease, number>();
    const claim = (lease: Lease, which: (kind: ActorKind, key: string) => boolean): void => {
      if (!lease.isHeld || claimedEpoch.get(lease) === lease.epoch) return;
      const epoch = lease.epoch;
      claimedEpoch.set(lease, epoch);
      // Once the store has read every value (at start it reads them in the background): the actors to claim
      // are those its copy says need it, and the runtime runs what they call for once they are all read.
      const claimed = kvStore
        .whenLoaded()
        .then(() => (lease.isHeld && lease.epoch === epoch ? kvStore.claimAll(epoch, which) : undefined));
      void claimed.catch((error: unknown) => {
        if (claimedEpoch.get(lease) === epoch) claimedEpoch.delete(lease);
        log.warn({ err: error }, 'claiming failed');
      });
    };
    const claimControl = (): void => claim(inputLease, (kind) => !partitioned || kind === 'training');
    inputLease.onChange((held) => held && claimControl());
    link.onReconnect(() => {
      claimControl();
      for (const k of partitions?.list() ?? []) {
        const lease = partitions?.lease(k);
        if (lease) claim(lease, (kind, key) => kind === 'model' && partitionOf(key, partitionCount) === k);
      }
      partitions?.nudge();
    });

    /** Per partition held here: its consumers, and the answers to commands forwarded to it. */
    const partitionResponders = new Map<number, CommandResponder>();
    const answerPartition = (k: number): void => {
      if (!answering || !attached || partitionResponders.has(k) || !partitions?.lease(k)) return;
      partitionResponders.set(
        k,
        new CommandResponder(link.nc, attached, p, undefined, log, {
          subject: `${p}.fwd.${k}.>`,
          translate: (subject) => `${p}.cmd.${subject.split('.').slice(3).join('.')}`,
        }),
      );
    };
    if (partitioned) {
      partitions = new Partitions(
        {
          count: partitionCount,
          kv: leaseKv,
          holder,
          instanceId: nuid.next(),
          ttlMs: settings.leaseTtlMs,
          onTransientFailure: transientFailure,
          open: (k, lease) => {
            const work = natsBus.openPartition(k, lease);
            claim(lease, (kind, key) => kind === 'model' && partitionOf(key, partitionCount) === k);
            answerPartition(k);
            return {
              stop: async () => {
                const forwarded = partitionResponders.get(k);
                partitionResponders.delete(k);
                await Promise.all([work.stop(), forwarded?.close()]);
              },
            };
          },
        },
        log,
      );
    }
    /** A model command reaching an instance that does not hold the model's partition goes to the one that does. */
    const forward = (subject: string): string | null => {
      if (!partitioned) return null;
      const [, , verb, modelId, ...more] = subject.split('.');
      if (modelId === undefined || more.length > 0 || !['approve', 'reject', 'rollback'].includes(verb!))
        return null;
      const k = partitionOf(modelId, partitionCount);
      return partitions?.lease(k)?.isHeld ? null : `${p}.fwd.${k}.${verb}.${modelId}`;
    };

    /**
     * Commands are answered by the instance that takes the inputs (the single writer, with the freshest
     * state); a standby starts answering when it takes over.
     */
    let answering = false;
    const followLease = (): void => {
      if (!answering || !attached) return;
      if (inputLease.isHeld && responder === null) {
        responder = new CommandResponder(link.nc, attached, p, names.commandQueue, log, { forward });
      } else if (!inputLease.isHeld && responder !== null) {
        const current = responder;
        responder = null;
        void current.close();
      }
    };
    inputLease.onChange(followLease);
    // Contend for the lease from the start, not only once inputs are consumed: the runtime's start runs what
    // committed state calls for (a rollback, a registry pointer to bring in line) as the writer, and
    // `attach` waits until it knows whether it holds it.
    inputLease.start();
    partitions?.start();

    const detach = async (): Promise<void> => {
      answering = false;
      const forwarded = [...partitionResponders.values()];
      partitionResponders.clear();
      await Promise.all(forwarded.map((r) => r.close()));
      const current = responder;
      if (!current) return;
      await current.close();
      responder = null;
      await drainIfDone();
    };

    return {
      bus: natsBus,
      store: kvStore,
      registry,
      names,
      endpoint: `NATS mode: ${describeServers(config.nats)} (subjects ${p}.in/evt/cmd.>, streams ${names.inputStream} and ${names.eventStream}, KV ${names.trainingBucket} and ${names.registryBucket}${partitioned ? `, ${partitionCount} input partitions` : ''})`,
      ready: () => link.connected(),
      role: () => (inputLease.isHeld || (partitions?.list().length ?? 0) > 0 ? 'active' : 'standby'),
      partitions: () => (partitions ? partitions.list() : inputLease.isHeld ? [0] : []),
      async attach(target: Warden) {
        if (answering)
          throw new WardenError('internal', 'the NATS adapters are already attached to a Warden');
        attached = target;
        answering = true;
        // A lone instance takes the lease at once, and one restarted after a crash once its old entry expires:
        // wait for it (bounded), so that commands work on return. One that sees another instance renew the
        // lease is a standby: it returns then (within a renewal), not after the TTL.
        await inputLease.whenRoleKnown(settings.leaseTtlMs + 500);
        followLease();
        for (const k of partitions?.list() ?? []) answerPartition(k);
        // With partitions, a lone instance takes them all at once: wait for its share (bounded).
        if (partitions) {
          const deadline = Date.now() + settings.leaseTtlMs + 500;
          while (
            partitions.list().length < Math.ceil(partitionCount / partitions.instances()) &&
            Date.now() < deadline
          )
            await new Promise((resolve) => setTimeout(resolve, 10));
          for (const k of partitions.list()) answerPartition(k);
        }
        // The subscription is in place once the server has seen it.
        await link.nc.flush();
      },
      detach,
      async close() {
        await detach();
        await natsBus.close();
        await kvStore.close();
        await link.close();
      },
    };
  } catch (error) {
    closeFirstRead?.();
    await bus?.close().catch(() => undefined);
    await link.close();
    throw error;
  }
}
