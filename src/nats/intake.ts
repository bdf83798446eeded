import type { Logger } from 'pino';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  JetStreamError,
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
  nanos,
} from '@nats-io/transport-node';
import { WardenError } from '../domain/errors.ts';
import type { BusMessage } from '../actors/ports.ts';
import { subjectMatches } from '../embedded/subjects.ts';
import { decodeMessage, withStreamEventId } from './codec.ts';
import { ensureDurable, type DurableSpec, type JetStreamSettings } from './setup.ts';
import type { Lease } from './lease.ts';
import { MOVED_MSG_ID } from './partitions-map.ts';

export type Handler = (message: BusMessage) => Promise<void> | void;

/** Where a message sits: its stream sequence, and the stream's identity (a recreated stream starts over). */
export interface Place {
  readonly streamId: string;
  readonly seq: number;
}

export interface IntakeHooks {
  /** A payload over the size limit: report it (Warden publishes nothing for it). Acked afterwards. */
  tooLarge?(subject: string, bytes: number, head: string, place: Place): Promise<void>;
  /** A subject no handler takes (e.g. `warden.in.foo.x`): report it. Acked afterwards. */
  unroutable?(message: BusMessage, place: Place): Promise<void>;
  /**
   * Kept failing for a reason of its own (a bug, not bad input, not NATS): park it in the dead-letter place
   * with its error and raise the alert; it is terminated afterwards and the inputs behind it go on.
   */
  deadLetter?(message: BusMessage, place: Place, attempts: number, error: unknown): Promise<void>;
  /** Already applied and committed (a redelivery): acknowledge without handling it again. */
  alreadyApplied?(message: BusMessage, key: string): boolean;
  /**
   * Ordered intakes, before the first message of `key` under a new lease epoch: read the key's latest
   * committed state and claim it for this epoch (a revision-checked write), so that the previous holder
   * can no longer write it.
   */
  claim?(key: string, epoch: number): Promise<void>;
  /** Ordered intakes: resolves when `key` may take its next input (null: now). */
  ready?(key: string): Promise<void> | null;
  /**
   * Ordered intakes of inputs: whether `key`, as it is now with the inputs just handed over applied (not
   * yet committed), may take more in the same group (see GROUP_MAX); false: its next input waits for
   * `ready`. Absent: one input of a key at a time.
   */
  mayGroup?(key: string): boolean;
}

export interface RetrySettings {
  /** Attempts for a message failing for a reason of its own, before it goes to the dead-letter place. */
  readonly maxDeliveries: number;
  /** The wait before attempt n+1 is baseDelayMs * 2^n, capped at maxDelayMs. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetrySettings = { maxDeliveries: 5, baseDelayMs: 100, maxDelayMs: 5_000 };

export interface IntakeOptions extends DurableSpec {
  /** Give inputs without an event_id one from their stream position (see `withStreamEventId`). */
  readonly stampEventIds: boolean;
  readonly maxBytes: number;
  readonly retry: RetrySettings;
  readonly connectionClosed: () => boolean;
  /**
   * Inputs: one message per key (the subject's last token: the model) at a time, in stream order, each
   * retried in place until it succeeds or goes to the dead letter; messages carry their stream sequence
   * (`position`). Every (re)start of consumption, and every take-over, recreates the consumer from its
   * acknowledgement floor: whatever was delivered but not acknowledged comes again at once, in order, and
   * what was applied already is recognised by its position.
   */
  readonly ordered?: boolean;
  /**
   * Ordered intakes of inputs: messages carry their stream sequence (`position`) and go through the
   * `claim`, `ready` and `alreadyApplied` hooks. (Ordered intakes of Warden's own events only keep order.)
   */
  readonly positions?: boolean;
  /** When given, messages are taken only while this instance holds the lease (one consumer at a time). */
  readonly lease?: Lease | undefined;
  /** Subscribes to reconnections (consumption restarts, see `ordered`). */
  readonly onReconnect?: ((listener: () => void) => () => void) | undefined;
  /** Counts NATS operations that failed and were retried (timeouts, disconnections). */
  readonly onTransientFailure?: ((what: string, error: unknown) => void) | undefined;
  /**
   * Partitioned intakes: the subject handlers see (`<prefix>.part.<k>.<kind>.<id>` is handed over as
   * `<prefix>.in.<kind>.<id>`, what the producer published).
   */
  readonly subjectOf?: ((subject: string) => string) | undefined;
  /**
   * Partitioned intakes: where a message belongs when it is not in its place (an input that reached the
   * stream without the server's partition mapping, or mapped for another number of partitions), or null.
   * Such a message is published there (its stream place as message id) and acknowledged here.
   */
  readonly placeOf?: ((subject: string) => string | null) | undefined;
  /** false: stop() leaves the lease to its owner (several intakes share a partition's lease). */
  readonly releaseLease?: boolean | undefined;
  /** Handlers shared with other intakes (the partitions of one durable); default: this intake's own. */
  readonly registrations?: Set<Registration> | undefined;
  /**
   * What Warden itself publishes on this durable's filter (a committed rollback event) is handed to the
   * handlers here at once, in process, while this instance consumes the durable (see `handOff`); the
   * durable's delivery of the same message (by its message id) then only acknowledges it.
   */
  readonly handOff?: boolean | undefined;
}

export interface Registration {
  readonly pattern: string;
  readonly handler: Handler;
}

const RESTART_DELAY_MS = 100;
/** A lane whose message this instance could not act on (its lease not valid for a moment) tries it again after. */
const LANE_RETRY_MS = 100;
/** Message ids handed over in process remembered (see `handOff`), at most this many. */
const HANDED_OFF_MEMORY = 10_000;
const MSG_ID_HEADER = 'Nats-Msg-Id';
/**
 * Ordered intakes of inputs: at most this many waiting inputs of one key are handed over together, in order,
 * in one turn, so that they are committed together (one write of the key's state) and then acknowledged.
 */
const GROUP_MAX = 64;
/** At most this many messages are taken in per macrotask: health checks and timers get their turn. */
const INTAKE_SLICE = 64;

/** A promise with its resolve function (Promise.withResolvers is not in Node 20). */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/**
 * A failure that says nothing about the message: NATS unreachable, a timeout, Warden shutting down, this
 * instance no longer holding the lease. Such a message is retried for as long as it takes; only failures of
 * the message itself count toward the dead letter.
 */
export function isTransient(error: unknown): boolean {
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

function retryDelay(retry: RetrySettings, attempt: number): number {
  return Math.min(retry.baseDelayMs * 2 ** Math.min(attempt, 16), retry.maxDelayMs);
}

/** Deliveries this process acknowledged or terminated: done with, whatever became of the publication. */
const finished = new WeakSet<JsMsg>();

/** Acks and naks are fire-and-forget publications: with the connection gone they throw, and that is fine. */
function settle(m: JsMsg, how: 'ack' | 'nak' | 'term' | 'working', arg?: number | string): void {
  if (how === 'ack' || how === 'term') finished.add(m);
  try {
    if (how === 'ack') m.ack();
    else if (how === 'nak') m.nak(arg as number | undefined);
    else if (how === 'term') m.term(arg as string | undefined);
    else m.working();
  } catch {
    // The server redelivers what it did not hear about.
  }
}

interface Lane {
  busy: boolean;
  /** When (performance.now()) the group in progress started. */
  busySince: number;
  /** The group in progress. */
  current: readonly JsMsg[];
  waiting: JsMsg[];
}

const NO_MESSAGES: readonly JsMsg[] = [];

/**
 * One durable JetStream consumer feeding the handlers of the patterns it covers, shared by every Warden
 * instance (each message goes to one of them). A message is acknowledged only once every handler has
 * finished with it, that is after its state change is committed. Messages come in through a queue taken in
 * slices of INTAKE_SLICE per macrotask, so that a flood never starves the event loop.
 */
export class Intake {
  private readonly registrations: Set<Registration>;
  private readonly inFlight = new Set<Promise<void>>();
  private messages: ConsumerMessages | null = null;
  private running: Promise<void> | null = null;
  private stopping = false;
  private streamId = '';
  /** Settles when the next message finishes; then replaced by a fresh one. */
  private activity = signal();
  /**
   * Settles when this intake may no longer act (it stops, or loses its lease); then replaced. An input
   * waiting for its model's turn stops waiting: it is not acknowledged, and comes again to the next holder.
   */
  private interrupted = signal();
  private consuming = false;
  /**
   * Hand-off intakes: whether the consumer has delivered here everything the stream held for it when it
   * (re)started. Until then an earlier message of a key may still be on its way, and one handed over in
   * process would overtake it.
   */
  private caughtUp = false;
  private readonly incoming: JsMsg[] = [];
  private draining = false;
  /** Ordered intakes: per key, whether a message is in progress and which wait their turn. */
  private readonly lanes = new Map<string, Lane>();
  /** Ordered intakes: keys whose lane is free and has inputs waiting to start, in the order they came. */
  private readonly free = new Set<string>();
  /**
   * Ordered intakes: stream sequences held here, waiting in their lane or in progress. A new delivery of one
   * (from a consumer made again meanwhile) is not queued twice: it is kept in `redelivered` until the one
   * held is done with, then acknowledged too, or handled in its place.
   */
  private readonly held = new Set<number>();
  private readonly redelivered = new Map<number, JsMsg>();
  /** Ordered intakes: tells the server, every third of the ack wait, that what waits long is still in hand. */
  private keepAlive: NodeJS.Timeout | null = null;
  /** Keys claimed under `claimedEpoch`. */
  private claimed = new Set<string>();
  private claimedEpoch = -1;
  private wake: (() => void) | null = null;
  /** Partitioned: messages moved to their partition so far, and when that was last logged. */
  private moved = 0;
  private movedLoggedAt = -Infinity;
  /**
   * Handed over in process (see `handOff`), the most recent HANDED_OFF_MEMORY: message id -> whether its
   * handlers succeeded.
   */
  private readonly handedOff = new Map<string, Promise<boolean>>();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: IntakeOptions,
    private readonly settings: JetStreamSettings,
    private readonly hooks: IntakeHooks,
    private readonly logger: Logger,
  ) {
    this.registrations = options.registrations ?? new Set<Registration>();
  }

  /** A partition of a shared durable: starts consuming once handlers are registered (and not stopped). */
  beginIfShared(): void {
    if (!this.options.registrations || this.registrations.size === 0 || this.stopping) return;
    this.running ??= this.run();
  }

  /**
   * A partition of a shared durable whose handlers are all gone (Warden stopping): stops consuming, so that
   * what comes meanwhile is given back for the next holder instead of being refused for want of a handler.
   */
  stopIfUnused(): void {
    if (this.options.registrations && this.registrations.size === 0 && !this.stopping) void this.stop();
  }

  get durable(): string {
    return this.options.durable;
  }

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

  /**
   * Stops pulling (nothing new starts) and waits for the messages already handed over, at most
   * `deadlineMs`: what is not finished by then is redelivered to the next holder (nothing is acknowledged
   * before its commit).
   */
  async stop(deadlineMs = 10_000): Promise<void> {
    this.stopping = true;
    this.wake?.();
    this.interruptWaits();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), deadlineMs);
      timer.unref();
    });
    // The library's close resolves once the consuming loop takes its next turn: within the same deadline
    // (the subscription is gone either way; the loop ends at its next turn).
    await Promise.race([this.messages?.close().catch(() => undefined), deadline]);
    for (const m of this.incoming.splice(0)) settle(m, 'nak');
    for (const lane of this.lanes.values()) for (const m of lane.waiting.splice(0)) this.giveBack(m);
    this.free.clear();
    const finished = await Promise.race([
      (async () => {
        await this.running;
        await this.settled();
        return true;
      })(),
      deadline,
    ]);
    clearTimeout(timer);
    if (this.keepAlive) clearInterval(this.keepAlive);
    if (!finished) {
      this.logger.warn(
        { consumer: this.options.durable, inFlight: this.inFlight.size },
        'stopped before every message in hand was finished; they will be delivered again',
      );
      return;
    }
    // Only now: the next holder must not start before what was handed over here is acknowledged.
    if (this.options.releaseLease !== false) await this.options.lease?.release().catch(() => undefined);
  }

  /** Resolves when every message handed over so far has been acknowledged or given back. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0 || this.incoming.length > 0 || this.draining) {
      if (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
      else await new Promise((resolve) => setImmediate(resolve));
    }
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

  /**
   * A message this instance publishes itself, committed (the outbox sends it), handed to the handlers here
   * at once instead of after its round trips through the stream and the durable, when this intake takes
   * such messages (`handOff`) and may act now (it holds the lease: the same instance would get it from
   * the durable), and no earlier message of its key is in progress here. The durable still delivers it: if
   * the handlers succeeded here, that delivery is only acknowledged (after a crash, or on another instance,
   * it is handled again: handlers are idempotent, as for any redelivery). Returns whether it was handed over.
   */
  handOff(subject: string, data: Uint8Array, msgId: string): boolean {
    if (!this.options.handOff || !this.consuming || !this.caughtUp || !this.mayAct()) return false;
    if (!subjectMatches(this.options.filter, subject)) return false;
    if (this.handedOff.has(msgId)) return true;
    const key = subject.slice(subject.lastIndexOf('.') + 1);
    const lane = this.options.ordered ? this.lanes.get(key) : undefined;
    if (lane && (lane.busy || lane.waiting.length > 0)) return false;
    // Arrived, not yet in its lane: it goes first.
    if (this.options.ordered && this.incoming.some((m) => m.subject.endsWith(`.${key}`))) return false;
    const targets = [...this.registrations].filter((r) => subjectMatches(r.pattern, subject));
    if (targets.length === 0) return false;
    const decoded = decodeMessage(subject, data, this.options.maxBytes);
    if (decoded.kind !== 'message') return false;
    const message = decoded.message;
    const work = (async () => {
      try {
        await Promise.all(targets.map((r) => r.handler(message)));
        return true;
      } catch (error) {
        this.logger.debug({ err: error, subject }, 'handing over in process failed; the durable delivers it');
        return false;
      }
    })();
    this.handedOff.set(msgId, work);
    if (this.handedOff.size > HANDED_OFF_MEMORY) this.handedOff.delete(this.handedOff.keys().next().value!);
    this.track(work.then(() => undefined));
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Consuming

  private async run(): Promise<void> {
    const lease = this.options.lease;
    const unlisten = lease?.onChange((held) => {
      if (!held) {
        void this.messages?.close().catch(() => undefined);
        this.interruptWaits();
      }
      this.wake?.();
    });
    // After a reconnection, whatever the server delivered meanwhile may be lost on the way: start over
    // from the acknowledgement floor (ordered) or at least pull again at once.
    const unreconnect = this.options.onReconnect?.(() => {
      lease?.nudge();
      if (this.options.ordered) void this.messages?.close().catch(() => undefined);
    });
    lease?.start();
    if (this.options.ordered && !this.keepAlive) {
      this.keepAlive = setInterval(() => this.keepHeldAlive(), this.settings.ackWaitMs / 3);
      this.keepAlive.unref();
    }
    while (!this.stopping && !this.options.connectionClosed()) {
      try {
        if (lease && !lease.isHeld) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = null;
          continue;
        }
        const info = await this.jsm.streams.info(this.options.stream);
        // The stream's creation time tells a recreated stream's sequence numbers from the old ones.
        this.streamId = `${this.options.stream}@${Date.parse(info.created).toString(36)}`;
        if (this.options.ordered) await this.resetConsumer(info.state.first_seq);
        else await ensureDurable(this.jsm, this.options, this.settings);
        if (lease && !lease.isHeld) continue;
        const consumer = await this.js.consumers.get(this.options.stream, this.options.durable);
        // Nothing for it on the stream: caught up at once; else at the delivery that leaves none pending.
        if (this.options.handOff) this.caughtUp = (await consumer.info()).num_pending === 0;
        const messages = await consumer.consume({
          max_messages: this.settings.maxAckPending,
          callback: (m) => this.receive(m),
        });
        this.messages = messages;
        this.consuming = true;
        if (this.stopping || (lease && !lease.isHeld)) await messages.close();
        void this.watchStatus(messages);
        const error = await messages.closed();
        if (error) throw error;
      } catch (error) {
        if (this.stopping) break;
        this.options.onTransientFailure?.('consume', error);
        this.logger.warn(
          { err: error, consumer: this.options.durable },
          'consumer stopped; starting it again',
        );
      } finally {
        this.messages = null;
        this.consuming = false;
        this.caughtUp = false;
      }
      if (!this.stopping && !this.options.connectionClosed()) await sleep(RESTART_DELAY_MS);
    }
    unlisten?.();
    unreconnect?.();
  }

  /**
   * Ordered intakes: the durable is made again, starting right after its acknowledgement floor, so that
   * everything not yet acknowledged is delivered now and in stream order (not after the ack wait, behind
   * later inputs). Messages still waiting here go back: they come again from the new consumer.
   */
  private async resetConsumer(firstSeq: number): Promise<void> {
    // Not acknowledged, they come again from the new consumer; no longer held here. (Those in progress stay
    // held: a new delivery of one waits in `redelivered` until it is done with; see afterGroup.)
    for (const lane of this.lanes.values()) {
      for (const m of lane.waiting) this.held.delete(m.info.streamSequence);
      lane.waiting.length = 0;
    }
    this.free.clear();
    this.incoming.length = 0;
    let start = 0;
    try {
      const info = await this.jsm.consumers.info(this.options.stream, this.options.durable);
      if (info.config.filter_subject !== this.options.filter) {
        throw new Error(
          `consumer ${this.options.durable} on ${this.options.stream} filters ${info.config.filter_subject}, expected ${this.options.filter}`,
        );
      }
      start = info.ack_floor.stream_seq + 1;
      await this.jsm.consumers.delete(this.options.stream, this.options.durable);
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound))
        throw error;
    }
    const fromStart = start === 0 || start <= firstSeq;
    await this.jsm.consumers.add(this.options.stream, {
      durable_name: this.options.durable,
      ack_policy: AckPolicy.Explicit,
      filter_subject: this.options.filter,
      max_deliver: -1,
      ack_wait: nanos(this.settings.ackWaitMs),
      max_ack_pending: this.settings.maxAckPending,
      ...(fromStart
        ? { deliver_policy: DeliverPolicy.All }
        : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start }),
    });
  }

  private async watchStatus(messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      if (status.type === 'consumer_deleted' || status.type === 'consumer_not_found') {
        // Someone removed the durable (or another holder remade it): start over.
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
    if (m.info.pending === 0) this.caughtUp = true;
    if (this.stopping || this.standingBy) {
      // Not started: give it back at once, so another instance (or the next start) takes it.
      settle(m, 'nak');
      return;
    }
    this.incoming.push(m);
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => this.drain());
    }
  }

  /**
   * Takes in what has arrived, then lets the event loop turn. Unordered: at most INTAKE_SLICE messages per
   * turn. Ordered: every message that has arrived first goes to the lane of its key (cheap), and only then
   * do free lanes start, each with all its waiting inputs as one group (one commit of the key's state), at
   * most INTAKE_SLICE inputs per turn. Started one by one as they came, a free lane took its first input
   * alone and a backlog over many keys committed about once per input.
   */
  private drain(): void {
    if (!this.options.ordered) {
      for (let n = 0; n < INTAKE_SLICE && this.incoming.length > 0; n++) {
        const m = this.incoming.shift()!;
        if (this.stopping || this.standingBy) settle(m, 'nak');
        else this.track(this.handleLoose(m));
      }
    } else {
      for (const m of this.incoming.splice(0)) {
        if (this.stopping || this.standingBy) {
          settle(m, 'nak');
          continue;
        }
        if (this.held.has(m.info.streamSequence)) {
          this.redelivered.set(m.info.streamSequence, m); // a new delivery of one held here
          continue;
        }
        const key = m.subject.slice(m.subject.lastIndexOf('.') + 1);
        let lane = this.lanes.get(key);
        if (!lane) {
          lane = { busy: false, busySince: 0, current: NO_MESSAGES, waiting: [] };
          this.lanes.set(key, lane);
        }
        lane.waiting.push(m);
        this.held.add(m.info.streamSequence);
        if (!lane.busy) this.free.add(key);
      }
      let started = 0;
      for (const key of this.free) {
        if (started >= INTAKE_SLICE) break;
        this.free.delete(key);
        const lane = this.lanes.get(key);
        if (!lane || lane.busy || lane.waiting.length === 0) continue;
        if (this.stopping || this.standingBy) {
          // Given back, as they would have been on arrival now.
          for (const m of lane.waiting.splice(0)) this.giveBack(m);
          if (this.lanes.get(key) === lane) this.lanes.delete(key);
          continue;
        }
        started += Math.min(lane.waiting.length, GROUP_MAX);
        this.startOrdered(lane, key, lane.waiting.shift()!);
      }
    }
    if (this.incoming.length > 0 || this.free.size > 0) setImmediate(() => this.drain());
    else this.draining = false;
  }

  private startOrdered(lane: Lane, key: string, m: JsMsg): void {
    lane.busy = true;
    lane.busySince = performance.now();
    const group =
      this.options.positions && this.hooks.mayGroup && lane.waiting.length > 0
        ? [m, ...lane.waiting.splice(0, GROUP_MAX - 1)]
        : [m];
    lane.current = group;
    this.track(
      (group.length === 1
        ? this.handleOrdered(m, key).then(() => undefined)
        : this.handleGroup(group, key)
      ).finally(() => this.afterGroup(lane, key, group)),
    );
  }

  /**
   * A lane moves on only past messages that are done with (acknowledged, or dead-lettered). One that is not
   * (this instance could not act on it: its lease not valid for a moment) goes first again, before the later
   * messages of its key: were they applied first, its model's position would pass it, and it would be taken
   * for a duplicate when it came again. While this instance does not hold the lease, the whole lane goes back
   * to the server instead, in order (the next holder's consumer starts again from the acknowledgement floor).
   */
  private afterGroup(lane: Lane, key: string, group: readonly JsMsg[]): void {
    lane.current = NO_MESSAGES;
    const undone: JsMsg[] = [];
    for (const g of group) {
      const seq = g.info.streamSequence;
      const copy = this.redelivered.get(seq);
      this.redelivered.delete(seq);
      if (finished.has(g)) {
        this.held.delete(seq);
        if (copy) settle(copy, 'ack'); // its consumer was made again meanwhile: it hears of it too
      } else {
        undone.push(copy ?? g); // still held: the newest delivery of it, whose consumer is the current one
      }
    }
    lane.waiting.unshift(...undone);
    const next = lane.waiting.shift();
    if (next && !this.stopping && !this.standingBy) {
      if (undone.length === 0) {
        this.startOrdered(lane, key, next);
        return;
      }
      lane.current = [next]; // in hand meanwhile (keepHeldAlive)
      const retry = setTimeout(() => {
        if (this.stopping || this.standingBy) this.afterGroup(lane, key, [next]);
        else this.startOrdered(lane, key, next);
      }, LANE_RETRY_MS);
      retry.unref();
      return;
    }
    if (next) for (const waiting of [next, ...lane.waiting.splice(0)]) this.giveBack(waiting);
    lane.busy = false;
    if (lane.waiting.length === 0 && this.lanes.get(key) === lane) this.lanes.delete(key);
  }

  /** A message held in a lane, given back to the server (redelivered to the next holder, or here later). */
  private giveBack(m: JsMsg): void {
    settle(m, 'nak');
    this.held.delete(m.info.streamSequence);
  }

  /**
   * Inputs can wait here longer than the ack wait: behind a rollback in flight (`ready`), or behind an input
   * of their model retried in place. Unless told they are in hand, the server delivers them again after the
   * ack wait, and every wait that long would queue each of them twice. So, every third of the ack wait, the
   * messages of a lane busy for longer than that are told to be in progress.
   */
  private keepHeldAlive(): void {
    const now = performance.now();
    const after = this.settings.ackWaitMs / 3;
    for (const lane of this.lanes.values()) {
      if (!lane.busy || now - lane.busySince < after) continue;
      for (const m of lane.current) {
        settle(m, 'working');
        const copy = this.redelivered.get(m.info.streamSequence);
        if (copy) settle(copy, 'working');
      }
      for (const m of lane.waiting) settle(m, 'working');
    }
  }

  private track(work: Promise<void>): void {
    const tracked = work
      .catch((error: unknown) => {
        this.logger.error({ err: error, consumer: this.options.durable }, 'message handling failed');
      })
      .finally(() => {
        this.inFlight.delete(tracked);
        this.activity.resolve();
        this.activity = signal();
      });
    this.inFlight.add(tracked);
  }

  private subjectOf(m: JsMsg): string {
    return this.options.subjectOf ? this.options.subjectOf(m.subject) : m.subject;
  }

  private place(m: JsMsg): Place {
    return { streamId: this.streamId, seq: m.info.streamSequence };
  }

  /** Whether this instance may still act on its messages. */
  private mayAct(): boolean {
    const lease = this.options.lease;
    return !this.stopping && !this.options.connectionClosed() && (!lease || lease.valid());
  }

  // ---------------------------------------------------------------------------------------------
  // Handling

  /**
   * Ordered: claim the key for this epoch, skip what was applied, hand the message over, and retry it in
   * place until it is committed or dead-lettered; the next message of its key waits meanwhile.
   */
  private async handleOrdered(m: JsMsg, key: string): Promise<boolean> {
    let attempts = 0;
    let transient = 0;
    for (;;) {
      if (!this.mayAct()) return false; // not acknowledged: the next holder (or this one, later) gets it again
      try {
        const place = this.options.placeOf?.(m.subject) ?? null;
        if (place !== null) {
          await this.js.publish(place, m.data, {
            msgID: `${MOVED_MSG_ID}${this.streamId}:${m.info.streamSequence}`,
            ...(m.headers ? { headers: m.headers } : {}),
          });
          this.moved++;
          // Once per minute at most: without the mapping, every input comes this way.
          if (performance.now() - this.movedLoggedAt > 60_000) {
            this.movedLoggedAt = performance.now();
            this.logger.warn(
              { subject: m.subject.slice(0, 300), to: place, moved: this.moved },
              'inputs not in their partition (is the server mapping in place, for this number of partitions? see docs/deployment.md); moved them there',
            );
          }
          settle(m, 'ack');
          return true;
        }
        await this.claimAndWait(key);
        if (!this.mayAct()) return false;
        const outcome = await this.handleOnce(m, key);
        if (outcome === 'done') settle(m, 'ack');
        return true;
      } catch (error) {
        if (isTransient(error)) {
          transient++;
          this.options.onTransientFailure?.('input', error);
          this.logger.warn({ err: error, subject: m.subject }, 'input failed for now; trying again');
        } else {
          attempts++;
          if (attempts >= this.options.retry.maxDeliveries) {
            await this.deadLetter(m, attempts, error);
            return true;
          }
          this.logger.warn(
            { err: error, subject: m.subject, attempts },
            'input failed; trying it again before the next input of its model',
          );
        }
        settle(m, 'working');
        await sleep(retryDelay(this.options.retry, attempts + Math.min(transient, 5)));
      }
    }
  }

  /** Inputs: the key claimed under the current lease epoch, and its turn (see IntakeHooks.claim, ready). */
  private async claimAndWait(key: string): Promise<void> {
    const lease = this.options.lease;
    if (lease && this.hooks.claim && this.options.positions) {
      if (this.claimedEpoch !== lease.epoch) {
        this.claimed = new Set();
        this.claimedEpoch = lease.epoch;
      }
      if (!this.claimed.has(key)) {
        await this.hooks.claim(key, lease.epoch);
        this.claimed.add(key);
      }
    }
    const ready = this.options.positions ? this.hooks.ready?.(key) : null;
    if (ready) await Promise.race([ready, this.interrupted.promise]);
  }

  private interruptWaits(): void {
    this.interrupted.resolve();
    this.interrupted = signal();
  }

  /**
   * Several waiting inputs of one key (group commit): handed over together, in order, in one turn, so that
   * the runtime applies them in order and commits them with one write of the key's state; then acknowledged.
   * The group stops early when the key may take no more now (its rollback started: what follows waits for
   * it, as one at a time). If any of them fails (an input failing for a reason of its own fails the ones
   * handed over with it too: see ActorRuntime.dropUncommitted; a failed commit fails them all), what was
   * acknowledged stays so, and the rest goes one at a time, in order, with the usual retries.
   */
  private async handleGroup(group: JsMsg[], key: string): Promise<void> {
    let rest = group;
    try {
      if (!this.mayAct()) return;
      if (group.some((m) => this.options.placeOf?.(m.subject) != null)) throw new Error('not in place');
      await this.claimAndWait(key);
      if (!this.mayAct()) return;
      const handed: Array<Promise<'done'>> = [];
      for (const m of group) {
        handed.push(this.handleOnce(m, key));
        if (!this.hooks.mayGroup!(key)) break;
      }
      const results = await Promise.allSettled(handed);
      let n = 0;
      while (n < results.length && results[n]!.status === 'fulfilled') settle(group[n++]!, 'ack');
      rest = group.slice(n);
    } catch (error) {
      this.logger.debug({ err: error, key }, 'a group of inputs goes one at a time');
    }
    for (const m of rest) if (!(await this.handleOrdered(m, key))) return;
  }

  private async deadLetter(m: JsMsg, attempts: number, error: unknown): Promise<void> {
    this.logger.error(
      { err: error, subject: m.subject, attempts },
      'input keeps failing; moving it to the dead letter',
    );
    const subject = this.subjectOf(m);
    const decoded = decodeMessage(subject, m.data, this.options.maxBytes);
    const message =
      decoded.kind === 'message' ? decoded.message : { subject, data: undefined, raw: decoded.head };
    for (let round = 0; ; round++) {
      try {
        await this.hooks.deadLetter?.(message, this.place(m), attempts, error);
        break;
      } catch (publishError) {
        if (!this.mayAct()) return;
        this.options.onTransientFailure?.('dead_letter', publishError);
        settle(m, 'working');
        await sleep(retryDelay(this.options.retry, round));
      }
    }
    settle(m, 'term', `failed ${attempts} times; dead-lettered`);
  }

  /** Not ordered (rollback events, acknowledgements, alerts): handed over at once; failures come again later. */
  private async handleLoose(m: JsMsg): Promise<void> {
    try {
      if ((await this.handleOnce(m, null)) === 'done') settle(m, 'ack');
    } catch (error) {
      const deliveries = m.info.deliveryCount;
      if (deliveries >= this.options.retry.maxDeliveries && !isTransient(error)) {
        this.logger.error(
          { err: error, subject: m.subject, deliveries },
          'message keeps failing; giving up on it',
        );
        settle(
          m,
          'term',
          `failed ${deliveries} times: ${error instanceof Error ? error.message : String(error)}`.slice(
            0,
            200,
          ),
        );
        return;
      }
      this.logger.warn(
        { err: error, subject: m.subject, deliveries },
        'message failed; it will be redelivered',
      );
      settle(m, 'nak', retryDelay(this.options.retry, deliveries));
    }
  }

  /**
   * Whether the message was handed over in process already and its handlers succeeded (see `handOff`). The
   * message id stays remembered after the durable's delivery (bounded, HANDED_OFF_MEMORY): the same message
   * published again under it (an outbox retry, the stranded sweep), which JetStream drops as a duplicate, must
   * not be handed over in process a second time either.
   */
  private async handledHere(m: JsMsg): Promise<boolean> {
    const msgId = m.headers?.get(MSG_ID_HEADER);
    const local = msgId ? this.handedOff.get(msgId) : undefined;
    if (!local) return false;
    return local;
  }

  private async handleOnce(m: JsMsg, key: string | null): Promise<'done'> {
    const subject = this.subjectOf(m);
    const decoded = decodeMessage(subject, m.data, this.options.maxBytes);
    if (decoded.kind === 'tooLarge') {
      await this.hooks.tooLarge?.(subject, decoded.bytes, decoded.head, this.place(m));
      return 'done';
    }
    let message = this.options.stampEventIds
      ? withStreamEventId(decoded.message, this.streamId, m.info.streamSequence)
      : decoded.message;
    if (this.options.positions)
      message = {
        ...message,
        position: m.info.streamSequence,
        id: `${this.streamId}:${m.info.streamSequence}`,
      };
    if (this.registrations.size === 0) {
      // No handler at all: this intake no longer serves (its handlers are going away), which says nothing
      // about the message. Given back, not refused.
      throw new WardenError('unavailable', `no handlers for ${this.options.durable} now`, {
        retryable: true,
      });
    }
    const targets = [...this.registrations].filter((r) => subjectMatches(r.pattern, subject));
    if (targets.length === 0) {
      await this.hooks.unroutable?.(message, this.place(m));
      return 'done';
    }
    if (key !== null && this.options.positions && this.hooks.alreadyApplied?.(message, key)) return 'done';
    if (this.options.handOff && (await this.handledHere(m))) return 'done';
    await Promise.all(targets.map((r) => r.handler(message)));
    return 'done';
  }
}
