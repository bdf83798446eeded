import type { Logger } from 'pino';
import {
  JetStreamError,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type ConsumerMessages,
  type JsMsg,
} from '@nats-io/jetstream';
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  RequestError,
  TimeoutError,
} from '@nats-io/transport-node';
import { WardenError } from '../domain/errors.ts';
import type { BusMessage } from '../actors/ports.ts';
import { subjectMatches } from '../embedded/subjects.ts';
import { decodeMessage, withStreamEventId } from './codec.ts';
import { ensureDurable, type DurableSpec, type JetStreamSettings } from './setup.ts';
import type { Lease } from './lease.ts';

export type Handler = (message: BusMessage) => Promise<void> | void;

export interface IntakeHooks {
  /** A payload over the size limit: report it (Warden publishes nothing for it). Acked afterwards. */
  tooLarge?(subject: string, bytes: number, head: string): Promise<void>;
  /** A subject no handler takes (e.g. `warden.in.foo.x`): report it. Acked afterwards. */
  unroutable?(message: BusMessage): Promise<void>;
  /** Kept failing (a bug, not bad input): report it, then it is terminated instead of looping forever. */
  poisoned?(message: BusMessage, error: unknown): Promise<void>;
  /** Already applied and committed (a redelivery): acknowledge without handling it again. */
  alreadyApplied?(message: BusMessage): boolean;
}

export interface IntakeOptions extends DurableSpec {
  /** Give inputs without an event_id one from their stream position (see `withStreamEventId`). */
  readonly stampEventIds: boolean;
  readonly maxBytes: number;
  /** After this many deliveries failing for a reason of its own, a message is reported and terminated. */
  readonly maxDeliveries: number;
  readonly connectionClosed: () => boolean;
  /**
   * At most this many messages of one key (the subject's last token: the model) in flight at a time; the
   * rest wait here, in order. Inputs need it: a model remembers its last 64 input ids, and whatever a crash
   * leaves unacknowledged must be among them to be recognised when it comes again.
   */
  readonly perKeyLimit?: number | undefined;
  /** When given, messages are taken only while this instance holds the lease (one consumer at a time). */
  readonly lease?: Lease | undefined;
}

interface Registration {
  readonly pattern: string;
  readonly handler: Handler;
}

const RESTART_DELAY_MS = 500;

/** A promise with its resolve function (Promise.withResolvers is not in Node 20). */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * A failure that says nothing about the message: NATS unreachable, a timeout, Warden shutting down. Such a
 * message is retried for as long as it takes; only failures of the message itself count toward giving up.
 */
function isTransient(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof WardenError && e.code === 'unavailable') return true;
    if (
      e instanceof TimeoutError ||
      e instanceof RequestError ||
      e instanceof NoRespondersError ||
      e instanceof ConnectionError ||
      e instanceof ClosedConnectionError ||
      e instanceof DrainingConnectionError ||
      e instanceof JetStreamError ||
      e instanceof JetStreamApiError
    ) {
      return true;
    }
  }
  return false;
}

/** How long a failed message waits before it is redelivered: grows with the attempts, capped. */
function redeliveryDelay(deliveryCount: number): number {
  return Math.min(100 * 2 ** Math.min(deliveryCount, 10), 5_000);
}

/**
 * One durable JetStream consumer feeding the handlers of the patterns it covers, shared by every Warden
 * instance (each message goes to one of them). Messages are handed over in arrival order, synchronously,
 * without waiting for the previous one: an actor takes each event as it comes, and the runtime commits
 * everything that arrived in one tick together. A message is acknowledged only once every handler has
 * finished with it, that is after its state change is committed; a failure is redelivered later.
 */
export class Intake {
  private readonly registrations = new Set<Registration>();
  private readonly inFlight = new Set<Promise<void>>();
  private messages: ConsumerMessages | null = null;
  private running: Promise<void> | null = null;
  private stopping = false;
  private streamId = '';
  /** Settles when the next message finishes; then replaced by a fresh one. */
  private activity = signal();
  private consuming = false;
  /** Per key (model) with a limit: how many of its messages are in flight, and which wait their turn. */
  private readonly lanes = new Map<string, { inFlight: number; waiting: JsMsg[] }>();
  private leaseChanged: (() => void) | null = null;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: IntakeOptions,
    private readonly settings: JetStreamSettings,
    private readonly hooks: IntakeHooks,
    private readonly logger: Logger,
  ) {}

  /** Single use: once stopped, an intake stays stopped (the bus makes a new one if asked again). */
  get stopped(): boolean {
    return this.stopping;
  }

  /** Pulling messages now (false before the first pull). */
  get consumingNow(): boolean {
    return this.consuming;
  }

  /** Another instance holds the lease: this one waits its turn. */
  get standingBy(): boolean {
    return this.options.lease !== undefined && !this.options.lease.isHeld;
  }

  add(pattern: string, handler: Handler): () => void {
    const registration = { pattern, handler };
    this.registrations.add(registration);
    this.running ??= this.run();
    return () => {
      this.registrations.delete(registration);
      if (this.registrations.size === 0) void this.stop();
    };
  }

  /** Stops pulling (nothing new starts) and waits for the messages already handed over. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.leaseChanged?.();
    await this.messages?.close();
    await this.running;
    await this.settled();
    // Only now: the next holder must not start before what was handed over here is acknowledged.
    await this.options.lease?.release();
  }

  /** Resolves when every message handed over so far has been acknowledged or given back. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Resolves when the next message finishes (whenever that is: callers race it with a timer). */
  nextSettled(): Promise<void> {
    return this.activity.promise;
  }

  /**
   * Whether the server still holds messages for this consumer: not yet delivered, or not yet acknowledged.
   * (A consumer info request; with a large backlog it costs the server, so only idle() asks, and not often.)
   */
  async pendingOnServer(): Promise<boolean> {
    const info = await this.jsm.consumers.info(this.options.stream, this.options.durable);
    return info.num_pending + info.num_ack_pending > 0;
  }

  // ---------------------------------------------------------------------------------------------

  private async run(): Promise<void> {
    const lease = this.options.lease;
    const unlisten = lease?.onChange((held) => {
      if (!held) void this.messages?.close();
      this.leaseChanged?.();
    });
    lease?.start();
    while (!this.stopping && !this.options.connectionClosed()) {
      try {
        await ensureDurable(this.jsm, this.options, this.settings);
        if (lease && !lease.isHeld) {
          await new Promise<void>((resolve) => (this.leaseChanged = resolve));
          this.leaseChanged = null;
          continue;
        }
        const info = await this.jsm.streams.info(this.options.stream);
        // The stream's creation time tells a recreated stream's sequence numbers from the old ones.
        this.streamId = `${this.options.stream}@${Date.parse(info.created).toString(36)}`;
        const consumer = await this.js.consumers.get(this.options.stream, this.options.durable);
        const messages = await consumer.consume({
          max_messages: this.settings.maxAckPending,
          callback: (m) => this.receive(m),
        });
        this.messages = messages;
        this.consuming = true;
        if (this.stopping) await messages.close();
        void this.watchStatus(messages);
        const error = await messages.closed();
        if (error) throw error;
      } catch (error) {
        if (this.stopping) break;
        this.logger.warn(
          { err: error, consumer: this.options.durable },
          'consumer stopped; starting it again',
        );
      } finally {
        this.messages = null;
        this.consuming = false;
      }
      if (!this.stopping && !this.options.connectionClosed() && (!lease || lease.isHeld)) {
        await new Promise((resolve) => setTimeout(resolve, RESTART_DELAY_MS));
      }
    }
    unlisten?.();
  }

  private async watchStatus(messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      if (status.type === 'consumer_deleted' || status.type === 'consumer_not_found') {
        // Someone removed the durable: start over, which makes it again (and its pulls with it).
        this.logger.warn(
          { consumer: this.options.durable, status: status.type },
          'durable consumer missing; recreating it',
        );
        messages.stop();
      } else if (status.type === 'heartbeats_missed') {
        this.logger.debug(
          { consumer: this.options.durable, count: status.count },
          'consumer heartbeats missed',
        );
      }
    }
  }

  private receive(m: JsMsg): void {
    if (this.stopping || this.standingBy) {
      // Not started: give it back at once, so another instance (or the next start) takes it.
      m.nak();
      return;
    }
    const limit = this.options.perKeyLimit;
    if (limit === undefined) {
      this.start(m, null);
      return;
    }
    const key = m.subject.slice(m.subject.lastIndexOf('.') + 1);
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { inFlight: 0, waiting: [] };
      this.lanes.set(key, lane);
    }
    if (lane.inFlight >= limit || lane.waiting.length > 0) {
      lane.waiting.push(m);
      return;
    }
    lane.inFlight++;
    this.start(m, key);
  }

  /** A message of `key` is done: start the next one waiting for it, in order (or give them back when stopping). */
  private release(key: string): void {
    const lane = this.lanes.get(key);
    if (!lane) return;
    lane.inFlight--;
    while (
      lane.waiting.length > 0 &&
      (this.stopping || this.standingBy || lane.inFlight < this.options.perKeyLimit!)
    ) {
      const next = lane.waiting.shift()!;
      if (this.stopping || this.standingBy) {
        next.nak();
        continue;
      }
      lane.inFlight++;
      this.start(next, key);
    }
    if (lane.inFlight === 0 && lane.waiting.length === 0) this.lanes.delete(key);
  }

  private start(m: JsMsg, key: string | null): void {
    const work = this.handle(m).catch((error: unknown) => {
      this.logger.error({ err: error, subject: m.subject }, 'message handling failed unexpectedly');
      m.nak(redeliveryDelay(m.info.deliveryCount));
    });
    const tracked = work.finally(() => {
      this.inFlight.delete(tracked);
      if (key !== null) this.release(key);
      this.activity.resolve();
      this.activity = signal();
    });
    this.inFlight.add(tracked);
  }

  /** Runs synchronously up to the handlers' first await, so that arrival order is processing order. */
  private handle(m: JsMsg): Promise<void> {
    const decoded = decodeMessage(m.subject, m.data, this.options.maxBytes);
    if (decoded.kind === 'tooLarge') {
      return (this.hooks.tooLarge?.(m.subject, decoded.bytes, decoded.head) ?? Promise.resolve()).then(() =>
        m.ack(),
      );
    }
    const message = this.options.stampEventIds
      ? withStreamEventId(decoded.message, this.streamId, m.info.streamSequence)
      : decoded.message;
    const targets = [...this.registrations].filter((r) => subjectMatches(r.pattern, m.subject));
    if (targets.length === 0) {
      return (this.hooks.unroutable?.(message) ?? Promise.resolve()).then(() => m.ack());
    }
    if (this.hooks.alreadyApplied?.(message)) {
      m.ack();
      return Promise.resolve();
    }
    const results = targets.map((r) => {
      try {
        return Promise.resolve(r.handler(message));
      } catch (error) {
        return Promise.reject(error);
      }
    });
    return Promise.all(results).then(
      () => m.ack(),
      (error: unknown) => this.failed(m, message, error),
    );
  }

  private async failed(m: JsMsg, message: BusMessage, error: unknown): Promise<void> {
    const deliveries = m.info.deliveryCount;
    if (deliveries >= this.options.maxDeliveries && !isTransient(error)) {
      this.logger.error(
        { err: error, subject: m.subject, deliveries },
        'message keeps failing; giving up on it',
      );
      await this.hooks.poisoned?.(message, error);
      m.term(
        `failed ${deliveries} times: ${error instanceof Error ? error.message : String(error)}`.slice(0, 200),
      );
      return;
    }
    this.logger.warn(
      { err: error, subject: m.subject, deliveries },
      'message failed; it will be redelivered',
    );
    m.nak(redeliveryDelay(deliveries));
  }
}
