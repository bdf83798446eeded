/**
 * The small interfaces the runtime needs from the outside world. Each has one adapter for the embedded
 * mode (src/embedded) and one for the NATS mode (src/nats); tests may inject fakes of their own.
 */

/** Time is injected: the runtime never reads the wall clock or sets a timer by itself. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const handle = setTimeout(fn, Math.min(Math.max(ms, 0), 2_147_483_647));
    handle.unref?.();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface BusMessage {
  readonly subject: string;
  /** The decoded payload; producers' bytes that are not JSON arrive as `raw` with `data` undefined. */
  readonly data: unknown;
  readonly raw?: string;
  /**
   * Where the message sits in the durable log it came from (the JetStream stream sequence of an input),
   * when it comes from one; the runtime commits it with the state of the actor the input changed.
   */
  readonly position?: number;
  /**
   * The message's identity in that log (NATS: `<stream>:<sequence>`): what is published about it (its
   * refusal) carries it in its message id, so a redelivery does not publish it twice.
   */
  readonly id?: string;
}

export type Unsubscribe = () => void;

export interface SubscribeOptions {
  /**
   * The subscriber must act on every message (a training config pauses on a rollback): a publication is
   * delivered only once its handler has finished, and a failing handler fails the publication, which is
   * then kept and published again. In NATS mode these are the durable consumers; in the embedded mode the
   * outbox keeps an event until every such handler has committed.
   */
  readonly durable?: boolean;
}

/** Subjects and wildcards follow NATS: tokens separated by ".", `*` one token, `>` the rest. */
export interface EventBus {
  /**
   * Resolves once the message is delivered: stored by NATS, or, in process, handled by every durable
   * subscriber (so that the outbox forgets an event only after those who must act on it have).
   */
  publish(subject: string, payload: unknown, options?: { msgId?: string }): Promise<void>;
  /**
   * Publications may be sent without waiting for the one before (NATS: they leave in order on one
   * connection, and a resent one is dropped as a duplicate by its message id); the outbox then sends a
   * page at once. Absent: one at a time, each after the one before was delivered.
   */
  readonly pipelined?: boolean;
  subscribe(
    pattern: string,
    handler: (message: BusMessage) => Promise<void> | void,
    options?: SubscribeOptions,
  ): Unsubscribe;
  /** Resolves when everything published so far has been handled (tests and the demo wait on it). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export interface ProductionPointer {
  readonly modelId: string;
  readonly version: string;
  readonly since: number;
  readonly reason: string;
}

export interface RollbackRequest {
  readonly rollbackId: string;
  readonly modelId: string;
  readonly fromVersion: string;
  readonly toVersion: string;
  readonly reason: string;
  readonly at: number;
  /**
   * Warden's own record of fromVersion's promotion: when (epoch ms), and the versions it promoted before it
   * (null if unknown). A pointer still at one of those, not moved since (its `since` no later than `at`),
   * lags Warden's own promotion writes, lost in a crash between a commit and its write: the rollback
   * applies over it. Any other pointer (moved by someone else) refuses it.
   */
  readonly fromPromotion: { readonly at: number; readonly earlier: readonly string[] } | null;
}

/**
 * Where the production pointer of each model lives. `rollback` is idempotent by rollbackId: applying the
 * same rollback twice (a redelivery, a restart mid-way) succeeds once and changes nothing the second time.
 * It rejects with an Error whose message says why when the rollback cannot be applied, or with a retryable
 * WardenError when it could not be tried here (the model moved to another instance, the connection closed).
 */
export interface ModelRegistry {
  recordPromotion(modelId: string, version: string, at: number, reason: string): Promise<void>;
  rollback(request: RollbackRequest): Promise<void>;
  production(modelId: string): Promise<ProductionPointer | null>;
}

export type ActorKind = 'model' | 'training';

export interface ActorRecord {
  readonly kind: ActorKind;
  readonly key: string;
  readonly snapshot: unknown;
  /** Optimistic concurrency: the revision this record was read at (0: new). */
  readonly revision: number;
  /**
   * The log position of the last input this actor applied (see BusMessage.position), committed with its
   * state; absent when no input with a position ever changed it. An input at or below it is a duplicate.
   */
  readonly position?: number;
  /**
   * The start-up index, committed with the snapshot (see `StateStore.startIndex`): the actor's next timer
   * deadline (null: none), and whether its committed state needs the runtime as soon as it starts (a
   * rollback in flight, inputs kept for afterwards, a registry write not yet confirmed). Set by the runtime
   * on every commit; stores without the index ignore them. A record read back without `attention` was
   * written before the index existed: it counts as needing the runtime, and its index is written once the
   * runtime writes the actor.
   */
  readonly deadline?: number | null;
  readonly attention?: boolean;
}

/** One actor in the start-up index: it has a timer, or needs the runtime at start (see ActorRecord). */
export interface IndexEntry {
  readonly kind: ActorKind;
  readonly key: string;
  readonly deadline: number | null;
  readonly attention: boolean;
  /**
   * The committed revision of the actor this entry was read from. A store that writes the index apart
   * from the commits, later (NATS: after the key's other writes), writes nothing if the actor was committed
   * again since: that commit carries its own index, and this one would contradict it.
   */
  readonly revision?: number;
}

export interface OutboxEntry {
  /** The event id; transports use it as the message id, so a republish is deduplicated. */
  readonly id: string;
  readonly subject: string;
  readonly payload: unknown;
}

export interface HistoryRecord {
  readonly at: number;
  readonly modelId: string;
  readonly kind: 'rolled_back' | 'rollback_failed';
  readonly payload: Record<string, unknown>;
}

/** One line of an actor's timeline (what the dashboard shows): every committed input, with who and why. */
export interface TimelineEntry {
  readonly at: number;
  readonly kind: ActorKind;
  /** The model id, or the training-config key. */
  readonly key: string;
  /** The input: PROMOTED, EVALUATED, APPROVE, PAUSE, ... */
  readonly event: string;
  /** What it led to (the outcome kind: healthy, regression, rolled_back, paused, ...). */
  readonly outcome: string;
  readonly from: string;
  readonly to: string;
  readonly by: string | null;
  /** One line for a person: what happened and why. */
  readonly summary: string;
}

export interface CommitBatch {
  readonly actors: readonly ActorRecord[];
  readonly outbox: readonly OutboxEntry[];
  readonly history: readonly HistoryRecord[];
  /** Optional: stores that keep a timeline write it with the rest, in the same atomic step. */
  readonly timeline?: readonly TimelineEntry[];
}

/**
 * The result of committing one part of a batch (see `StateStore.commitEach`). `carried`: outbox entries
 * that earlier commits of the actor made elsewhere (another instance, since gone or cut off) and that are
 * still unpublished; they stay stored with the actor, and the runtime publishes them ahead of this commit's
 * own, so that an actor's events reach the bus in the order of its commits. `outcomeUnknown`: the write got
 * no answer (NATS away, a timeout) and may have landed; the store brings the copy in line later (its watch
 * brings the record, or it claims the actor again).
 */
export type PartResult =
  | { readonly ok: true; readonly revision: number; readonly carried?: readonly OutboxEntry[] }
  | { readonly ok: false; readonly error: unknown; readonly outcomeUnknown?: boolean };

/**
 * Durable state. `commit` writes snapshots, the publications they caused and history in one atomic step;
 * it fails with a ConflictError when an actor's stored revision is not the one it was read at (another
 * instance got there first), and then writes nothing. It returns the new revision of each actor, in order.
 */
export interface StateStore {
  loadActors(kind: ActorKind): Promise<ActorRecord[]>;
  loadActor(kind: ActorKind, key: string): Promise<ActorRecord | null>;
  commit(batch: CommitBatch): Promise<number[]>;
  pendingOutbox(limit: number): Promise<OutboxEntry[]>;
  markPublished(ids: readonly string[]): Promise<void>;
  history(query: { modelId?: string | undefined; limit: number }): Promise<HistoryRecord[]>;
  /** Optional: an actor's timeline, newest first (bounded per actor by the store). */
  timeline?(kind: ActorKind, key: string, limit: number): Promise<TimelineEntry[]>;
  close(): Promise<void>;
  /**
   * Optional, for stores that are atomic per actor rather than per batch (NATS KV): commits every part (one
   * actor, with the outbox entries and history it caused) on its own, all at once, and reports each result
   * in order; a part that fails wrote nothing. The runtime then uses it instead of `commit`.
   */
  commitEach?(parts: readonly CommitBatch[]): Promise<PartResult[]>;
  /**
   * Optional, for stores that several instances share: calls `listener` with each actor record committed
   * after `loadActors` by someone else, so that live actors follow the store instead of going stale.
   */
  watch?(listener: (record: ActorRecord) => void): Unsubscribe;
  /**
   * Optional, together with `peekActors` and `startIndex`, for stores that hold every committed record
   * within reach (a local database, an in-memory cache of a bucket): the committed record of one actor,
   * synchronously. With these three the runtime starts lazily (actors load on demand) and passivates idle
   * actors; without them every actor is loaded at start and stays resident.
   */
  peekActor?(kind: ActorKind, key: string): ActorRecord | null;
  /** Every committed record of a kind, one at a time (list views of actors that are not resident). */
  peekActors?(kind: ActorKind): Iterable<ActorRecord>;
  /**
   * The actors with a timer or needing attention at start (see ActorRecord.deadline/attention), or null
   * when the store holds records written before it kept the index: the runtime then loads every actor
   * once and hands the index back with `saveIndex`.
   */
  startIndex?(): Promise<IndexEntry[] | null>;
  /**
   * Optional, for a store that reads its records after it opens (NATS mode: every instance's copy of the
   * bucket, about 30 s at a million models): resolves once every record is within reach of the lazy trio.
   * Until then `peekActor` answers only for the actors `prefetch` has read, and `peekActors`, `countStates`
   * and `startIndex` wait or see part of them: the runtime applies the start-up index when this resolves,
   * and lists and counts wait for it (Warden.whenLoaded).
   */
  whenLoaded?(): Promise<void>;
  /**
   * With `whenLoaded`: makes one actor's record within reach of `peekActor` before the store has read every
   * record (null: it is already, or nothing is to be read). Whatever applies an input or a command to an
   * actor, or reads it, awaits this first.
   */
  prefetch?(kind: ActorKind, key: string): Promise<void> | null;
  /** Optional, with the lazy trio: how many committed actors of a kind are in each state (metrics). */
  countStates?(kind: ActorKind): Map<string, number>;
  /** Writes the start-up index of the given actors (every actor, when rebuilding it) and marks it built. */
  saveIndex?(entries: readonly IndexEntry[]): Promise<void>;
  /**
   * Optional, for stores that several instances share, each writing part of the actors (NATS mode, input
   * partitions): whether this instance writes this actor now. The runtime runs an actor's effects (the
   * rollback, kept inputs) and timers only where it is written; elsewhere it only follows its state.
   */
  owns?(kind: ActorKind, key: string): boolean;
}
