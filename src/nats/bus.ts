import type { Logger } from 'pino';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { BusMessage, EventBus, Unsubscribe } from '../actors/ports.ts';
import { decodeMessage, encodeJson } from './codec.ts';
import { Intake, type Handler, type IntakeHooks, type IntakeOptions, type Registration } from './intake.ts';
import type { Lease } from './lease.ts';
import { covers } from './subjects.ts';
import type { JetStreamSettings } from './setup.ts';

export interface NatsBusOptions {
  /** Subjects under these prefixes go to JetStream (acknowledged, deduplicated by message id). */
  readonly streamPrefixes: readonly string[];
  /** Patterns these durables cover are consumed durably and shared by all instances; others are live. */
  readonly durables: ReadonlyArray<Omit<IntakeOptions, 'connectionClosed'>>;
  /**
   * Durables split by input partition (nats.partitions above 1): one consumer per partition, on the
   * instance holding the partition's lease (see Partitions); handlers of the patterns `covers` covers are
   * shared by all of them.
   */
  readonly partitioned?: readonly PartitionedSpec[];
  /** The stream that takes a publication's subject, to name it when it refuses one. */
  readonly streamOf?: (subject: string) => string;
  /** The subject a publication goes to (Warden's own internal messages may be partitioned too). */
  readonly publishSubject?: (subject: string) => string;
  /**
   * Stores a publication in its stream, deduplicated by `msgId` (NATS mode: a JetStreamWriter, cheaper per
   * publication than nats.js's request); `js.publish` when absent.
   */
  readonly publishToStream?: (subject: string, data: Uint8Array, msgId?: string) => Promise<unknown>;
  readonly settings: JetStreamSettings;
  readonly hooks: IntakeHooks;
  readonly maxBytes: number;
  readonly connected: () => boolean;
  /** Runs once the bus is closed (the adapters drain the connection when bus and store are both closed). */
  readonly afterClose?: () => Promise<void>;
}

export interface PartitionedSpec extends Omit<
  IntakeOptions,
  'connectionClosed' | 'durable' | 'filter' | 'lease' | 'registrations'
> {
  /** The subjects its handlers see (e.g. `<prefix>.in.>`). */
  readonly covers: string;
  readonly durableOf: (partition: number) => string;
  readonly filterOf: (partition: number) => string;
}

const IDLE_POLL_MS = 20;

/**
 * The EventBus over NATS. Publications on Warden's subjects go through JetStream with the event id as
 * message id. Subscriptions come in two kinds:
 * - patterns covered by a durable (inputs, the rollback events training configs act on, the internal
 *   pause acknowledgements, alerts): a durable consumer shared by every instance, each message handled by
 *   one of them and acknowledged after its handler finished; nothing is lost while Warden is down;
 * - anything else (dashboards, tests): a plain NATS subscription in this process, like the embedded bus.
 */
export class NatsBus implements EventBus {
  private readonly intakes = new Map<string, Intake>();
  private readonly live = new Set<LiveSubscription>();
  private readonly groups: Array<{ spec: PartitionedSpec; registrations: Set<Registration> }>;
  private closed = false;
  /** JetStream publications leave in order on the connection and are deduplicated by message id. */
  readonly pipelined = true;

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: NatsBusOptions,
    private readonly logger: Logger,
  ) {
    this.groups = (options.partitioned ?? []).map((spec) => ({ spec, registrations: new Set() }));
  }

  async publish(subject: string, payload: unknown, options?: { msgId?: string }): Promise<void> {
    if (this.closed) throw new Error(`bus closed: cannot publish on ${subject}`);
    const data = encodeJson(payload);
    subject = this.options.publishSubject ? this.options.publishSubject(subject) : subject;
    if (this.options.streamPrefixes.some((prefix) => subject.startsWith(prefix))) {
      if (options?.msgId)
        for (const intake of this.intakes.values()) intake.handOff(subject, data, options.msgId);
      try {
        const msgId = options?.msgId || undefined;
        if (this.options.publishToStream) await this.options.publishToStream(subject, data, msgId);
        else await this.js.publish(subject, data, msgId ? { msgID: msgId } : undefined);
      } catch (error) {
        // The stream itself refused it (its limits reached with discard new, a message too large, ...): say
        // which stream and why. The JetStream error stays the cause (it is what tells a transient failure).
        if (!(error instanceof JetStreamApiError)) throw error;
        const stream = this.options.streamOf?.(subject) ?? 'the stream';
        throw new Error(
          `${stream} refused a publication on ${subject}: ${error.message} (JetStream error ${error.code})`,
          { cause: error },
        );
      }
    } else {
      this.nc.publish(subject, data);
    }
  }

  subscribe(pattern: string, handler: Handler): Unsubscribe {
    if (this.closed) throw new Error(`bus closed: cannot subscribe to ${pattern}`);
    const spec = this.options.durables.find((d) => covers(d.filter, pattern));
    const groups = this.groups.filter((g) => covers(g.spec.covers, pattern));
    if (groups.length > 0) {
      const registration = { pattern, handler };
      for (const group of groups) group.registrations.add(registration);
      // Partitions taken before the handlers were there start consuming now.
      for (const intake of this.intakes.values()) intake.beginIfShared();
      const unsubscribe = spec ? this.intakeFor(spec).add(pattern, handler) : () => undefined;
      return () => {
        for (const group of groups) group.registrations.delete(registration);
        unsubscribe();
        // The partitions' intakes left without handlers stop, as the control intake does: else they would
        // go on taking inputs (their lease is held until the partitions close) with nobody to hand them to.
        for (const intake of this.intakes.values()) intake.stopIfUnused();
      };
    }
    if (spec) return this.intakeFor(spec).add(pattern, handler);
    const sub = new LiveSubscription(this.nc, pattern, handler, this.options.maxBytes, this.logger);
    this.live.add(sub);
    return () => {
      this.live.delete(sub);
      sub.close();
    };
  }

  /**
   * Resolves when every message handed to a handler here has been dealt with and, for the durables in use,
   * the server holds nothing more for them (published but not yet delivered, or not yet acknowledged).
   */
  async idle(): Promise<void> {
    // Always give timers and I/O a turn: callers poll idle() in a loop (the runtime waits for the outbox,
    // whose retry is a timer), and an answer made of resolved promises only would starve them.
    await new Promise((resolve) => setImmediate(resolve));
    for (;;) {
      await Promise.all([...this.intakes.values()].map((intake) => intake.settled()));
      await Promise.all([...this.live].map((sub) => sub.settled()));
      const active = [...this.intakes.values()].filter((intake) => !intake.stopped);
      if (active.length === 0 || this.nc.isClosed()) return;
      let busy: boolean;
      try {
        // An intake standing by (another instance holds its lease) waits for that instance to drain it.
        const pending = async (intake: Intake) =>
          (!intake.standingBy && !intake.consumingNow) || (await intake.pendingOnServer());
        busy = (await Promise.all(active.map(pending))).some(Boolean);
      } catch (error) {
        // NATS is away: nothing more can arrive until it is back.
        if (!this.options.connected()) return;
        this.logger.debug({ err: error }, 'could not tell whether the consumers are drained; asking again');
        busy = true;
      }
      if (!busy) return;
      await Promise.race([
        ...active.map((intake) => intake.nextSettled()),
        new Promise((resolve) => setTimeout(resolve, IDLE_POLL_MS)),
      ]);
    }
  }

  /** Stops every intake (in-flight messages finish and are acknowledged) and every live subscription. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.intakes.values()].map((intake) => intake.stop()));
    this.intakes.clear();
    for (const sub of this.live) sub.close();
    await Promise.all([...this.live].map((sub) => sub.settled()));
    this.live.clear();
    await this.options.afterClose?.();
  }

  /**
   * The consumers of one partition, under its lease: they consume once the handlers are subscribed. The
   * returned stop() stops them (what they hold is acknowledged or given back); the lease stays with its owner.
   */
  openPartition(partition: number, lease: Lease): { stop(): Promise<void> } {
    if (this.closed) throw new Error(`bus closed: cannot open partition ${partition}`);
    const intakes = this.groups.map(({ spec, registrations }) => {
      const { covers: _covers, durableOf, filterOf, ...rest } = spec;
      const intake = new Intake(
        this.js,
        this.jsm,
        {
          ...rest,
          durable: durableOf(partition),
          filter: filterOf(partition),
          lease,
          releaseLease: false,
          registrations,
          connectionClosed: () => this.nc.isClosed(),
        },
        this.options.settings,
        this.options.hooks,
        this.logger.child({ consumer: durableOf(partition) }),
      );
      this.intakes.set(durableOf(partition), intake);
      intake.beginIfShared();
      return intake;
    });
    return {
      stop: async () => {
        await Promise.all(intakes.map((intake) => intake.stop()));
        for (const intake of intakes)
          if (this.intakes.get(intake.durable) === intake) this.intakes.delete(intake.durable);
      },
    };
  }

  private intakeFor(spec: NatsBusOptions['durables'][number]): Intake {
    const existing = this.intakes.get(spec.durable);
    if (existing && !existing.stopped) return existing;
    const intake = new Intake(
      this.js,
      this.jsm,
      { ...spec, connectionClosed: () => this.nc.isClosed() },
      this.options.settings,
      this.options.hooks,
      this.logger.child({ consumer: spec.durable }),
    );
    this.intakes.set(spec.durable, intake);
    return intake;
  }
}

/** A plain subscription: every message, in order, one at a time, as the embedded bus delivers them. */
class LiveSubscription {
  private readonly sub: Subscription;
  private chain: Promise<void> = Promise.resolve();

  constructor(nc: NatsConnection, pattern: string, handler: Handler, maxBytes: number, logger: Logger) {
    this.sub = nc.subscribe(pattern, {
      callback: (error, m) => {
        if (error) {
          logger.warn({ err: error, pattern }, 'subscription error');
          return;
        }
        const decoded = decodeMessage(m.subject, m.data, maxBytes);
        const message: BusMessage =
          decoded.kind === 'message'
            ? decoded.message
            : { subject: m.subject, data: undefined, raw: decoded.head };
        this.chain = this.chain.then(async () => {
          try {
            await handler(message);
          } catch (handlerError) {
            logger.error({ err: handlerError, subject: m.subject }, 'bus handler failed');
          }
        });
      },
    });
  }

  settled(): Promise<void> {
    return this.chain;
  }

  close(): void {
    this.sub.unsubscribe();
  }
}
