import { randomUUID } from 'node:crypto';
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import type { Logger } from 'pino';
import type {
  ActorKind,
  ActorRecord,
  Clock,
  EventBus,
  HistoryRecord,
  IndexEntry,
  ModelRegistry,
  OutboxEntry,
  PartResult,
  RollbackRequest,
  StateStore,
  TimelineEntry,
  Unsubscribe,
} from './ports.ts';
import { timelineEntry } from '../domain/timeline.ts';
import { ConflictError, UnknownModelError, WardenError } from '../domain/errors.ts';
import { subjectFor, type OutputEvent } from '../domain/events.ts';
import type { ModelMachine } from '../machines/model-machine.ts';
import type { TrainingMachine } from '../machines/training-machine.ts';
import type { ModelPolicy } from '../machines/model-policy.ts';
import { cooldownDeadline, deferredOf } from '../machines/model-logic.ts';
import type { ModelContext, ModelEvent, ModelStateName, Outcome } from '../machines/model-types.ts';
import type {
  TrainingContext,
  TrainingEvent,
  TrainingOutcome,
  TrainingStateName,
} from '../machines/training-types.ts';
import { Outbox } from './outbox.ts';
import { migrateSnapshot, type StoredSnapshot } from '../machines/migrations.ts';
import { DeadlineIndex } from './deadline-index.ts';
import { PassivationPolicy } from './passivation.ts';
import { persistedSnapshotOf } from './persisted.ts';

/** Hooks for logs and metrics; every one is optional. */
export interface RuntimeObserver {
  transition?(kind: ActorKind, key: string, from: string, to: string, event: string): void;
  outcome?(kind: ActorKind, key: string, event: string, outcome: Outcome | TrainingOutcome): void;
  published?(event: OutputEvent): void;
  effectFailed?(what: string, error: unknown): void;
}

export interface Residency {
  readonly models: number;
  readonly trainings: number;
  readonly passivated: number;
  readonly timersArmed: number;
  readonly timersIndexed: number;
}

export interface RuntimeDeps {
  readonly modelMachine: ModelMachine;
  readonly trainingMachine: TrainingMachine;
  readonly modelPolicy: ModelPolicy;
  readonly store: StateStore;
  readonly registry: ModelRegistry;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly prefix: string;
  readonly observer?: RuntimeObserver | undefined;
  /** How long `stop` waits for registry calls still out (default 5 s); a wall-clock bound on shutdown. */
  readonly registryStopWaitMs?: number | undefined;
  /** XState inspection (the Stately inspector); off unless given. */
  readonly inspect?: ((event: InspectionEvent) => void) | undefined;
  /**
   * Passivate actors idle for this long (ms): state in the store, nothing resident, back on their next
   * input, command, status query or timer. Null or absent: actors stay resident. Only with a store that
   * can peek (see StateStore.peekActor); with one, actors also load on demand rather than all at start.
   */
  readonly passivateAfterMs?: number | null | undefined;
}

type AnyActor = Actor<ModelMachine> | Actor<TrainingMachine>;

interface Host {
  readonly kind: ActorKind;
  readonly key: string;
  actor: AnyActor;
  readonly configKey: string;
  revision: number;
  /** The log position of the last input applied, as committed (0: none). */
  position: number;
  /** The last committed snapshot: what a failed commit reverts to. */
  persisted: unknown;
  emitted: Array<{ type: 'publish'; event: OutputEvent }>;
  /** The armed timer: the deadline it is for, its event, and when it fires (later, when tried again). */
  timer: { at: number; type: TimerEvent; firesAt: number; handle: unknown } | null;
  /** The deferred input being handed back (its id), so that it is handed back once. */
  handingBack: number | null;
  /**
   * The newest record another instance committed while a commit of this copy was pending (see adopt): once
   * that commit is settled, the copy follows it if it is still newer than what the copy holds.
   */
  parked: ActorRecord | null;
  /**
   * Its last commit got no answer (see PartResult.outcomeUnknown): the write may have landed, and the copy
   * may be behind what is stored until the store brings it in line. Meanwhile an event the copy refuses as
   * stale is not answered as such (its sender would drop it for good): it fails, retryably, and comes again;
   * and the store is read to learn what is stored (see learnWhatIsStored).
   */
  outcomeUnknown: boolean;
  /** A read of the store under way for `outcomeUnknown`. */
  learning: boolean;
  /** Registry writes still out (promotions, reconciles): the start-up index flags the actor until they end. */
  registryWrites: number;
  /**
   * The last of this model's registry writes: each waits for the one before, so the pointer moves in commit
   * order (a promotion's write retried after a timeout never lands after the rollback that followed it).
   */
  registryTail: Promise<void> | null;
  /**
   * The registry pointer may lag the model's committed production version: a promotion's write of this
   * instance failed, or the record this instance came to write says so (its writer's promotion write was
   * not confirmed). The writer brings the pointer in line (see reconcilePointer); until then the start-up
   * index keeps flagging the actor.
   */
  pointerMayLag: boolean;
  /**
   * Its stored record carries no start-up index (written by a build before the index): every start loads it.
   * Once this instance writes the actor, the index is written on top of the record (see saveIndexOf).
   */
  unindexed: boolean;
  /** The look at what its committed state calls for that is due next (see lookAgainLater). */
  lookAgain: { readonly at: number; handle: unknown } | null;
  /** Attempts in a row to bring the registry pointer in line that failed: the next waits longer. */
  pointerRetries: number;
  /** When the actor last took an input, command, query or timer (the clock's time), for passivation. */
  touchedAt: number;
  log: Logger;
}

type TimerEvent = 'APPROVAL_EXPIRED' | 'COOLDOWN_ELAPSED' | 'AUTO_RESUME_ELAPSED';
const TIMER_EVENTS: ReadonlySet<string> = new Set<TimerEvent>([
  'APPROVAL_EXPIRED',
  'COOLDOWN_ELAPSED',
  'AUTO_RESUME_ELAPSED',
]);
const isTimerEvent = (type: string): boolean => TIMER_EVENTS.has(type);

/** How long a timer whose event could not be processed (a failed commit) waits before it fires again. */
const TIMER_RETRY_MS = 1000;
/** The longest wait before the registry pointer is brought in line again after failed attempts. */
const POINTER_RETRY_MAX_MS = 60_000;

interface PendingDispatch {
  readonly host: Host;
  readonly event: ModelEvent | TrainingEvent;
  readonly create: { configKey: string } | undefined;
  /** The input's log position, committed with the actor's state (see BusMessage.position). */
  readonly position: number | undefined;
  readonly outbox: readonly OutboxEntry[];
  readonly history: readonly HistoryRecord[];
  readonly timeline: TimelineEntry | null;
  readonly outcome: Outcome | TrainingOutcome;
  readonly resolve: (outcome: Outcome | TrainingOutcome) => void;
  readonly reject: (error: unknown) => void;
}

const NO_OUTBOX: readonly OutboxEntry[] = Object.freeze([]);
const NO_HISTORY: readonly HistoryRecord[] = Object.freeze([]);

/** Rollbacks and failed rollbacks are the history; it is written in the same commit as the event. */
function toHistory(publications: readonly OutputEvent[]): HistoryRecord[] {
  return publications.flatMap((p): HistoryRecord[] =>
    p.type === 'PROMOTION_ROLLED_BACK' || p.type === 'ROLLBACK_FAILED'
      ? [
          {
            at: Math.round(p.payload.timestamp * 1000),
            modelId: p.payload.model_id,
            kind: p.type === 'PROMOTION_ROLLED_BACK' ? 'rolled_back' : 'rollback_failed',
            payload: p.payload as Record<string, unknown>,
          },
        ]
      : [],
  );
}

const MAX_COMMIT_ATTEMPTS = 5;

/** When a version was last promoted, and the versions promoted before it (RollbackRequest.fromPromotion). */
function promotionOf(context: ModelContext, version: string): RollbackRequest['fromPromotion'] {
  const index = context.lineage.findLastIndex((v) => v.version === version);
  if (index < 0) return null;
  return {
    at: context.lineage[index]!.promotedAt,
    earlier: context.lineage.slice(0, index).map((v) => v.version),
  };
}

/** An actor's id in `hosts` and in the deadline index. */
const idOf = (host: Pick<Host, 'kind' | 'key'>): string => `${host.kind}:${host.key}`;

/** An input not applied because an input of the same actor failed in the same turn (retryable). */
function revertedError(kind: ActorKind, key: string): WardenError {
  return new WardenError(
    'unavailable',
    `${kind} ${key}: another input of it failed in the same turn and its state went back to the last commit; not applied, try again`,
    { retryable: true },
  );
}

/**
 * Hosts one live actor per model id and per training-config key. Every event goes through `dispatch`:
 * the actor takes it synchronously (XState's mailbox), the resulting snapshot and its publications are
 * committed to the store in batches (one transaction for all dispatches of one tick), and only then does
 * the caller hear back, the outbox publish, timers re-arm and effects (the registry rollback) start.
 */
export class ActorRuntime {
  /** Resident actors by `kind:key` (the deadline index's ids), in the order they came. */
  private readonly hosts = new Map<string, Host>();
  /**
   * The same actors by kind, keyed by the caller's own key string: a lookup on the hot path (three per
   * input) builds no `kind:key` string, and V8 hashes the caller's string once.
   */
  private readonly residents: Record<ActorKind, Map<string, Host>> = {
    model: new Map(),
    training: new Map(),
  };
  private batch: PendingDispatch[] = [];
  private flushScheduled = false;
  private flushing: Promise<void> = Promise.resolve();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Registry calls still out in the world; idle() does not wait for them, stop() does. */
  private readonly registryCalls = new Set<Promise<unknown>>();
  private readonly rollbacksRunning = new Set<string>();
  private readonly outbox: Outbox;
  private stopped = false;
  /** Actors whose commit is in flight: a record from another instance must not replace them meanwhile. */
  private readonly committing = new Set<Host>();
  /**
   * Actors (`kind:key`) put back to their committed snapshot by a failed input in this turn (see
   * dropUncommitted): by id, not by host, so that the rule holds for a host forgotten and made again.
   */
  private readonly reverted = new Set<string>();
  private unwatch: Unsubscribe | null = null;
  /**
   * Lazy mode (a store that can peek): actors load on demand; those not resident keep their next timer
   * in the deadline index, and idle ones are passivated by the policy (when configured).
   */
  private readonly lazy: boolean;
  private readonly deadlines: DeadlineIndex;
  private readonly passivation: PassivationPolicy | null;
  private passivations = 0;
  /**
   * Lazy mode: how many committed actors of each kind are in each state, read from the store at the first
   * `stateCounts` and kept by every commit from then on (each scrape reading every stored snapshot would
   * take seconds at a million models); null while unknown. Dropped whenever committed state may have changed
   * without a commit here (another writer of a shared store), to be read again.
   */
  private committedCounts: Record<ActorKind, Map<string, number> | null> = { model: null, training: null };
  /** See whenLoaded. */
  private loaded: Promise<void> = Promise.resolve();
  /** The config keys of every model, once asked for (see hasModelWithConfigKey); null before. */
  private modelConfigKeys: Set<string> | null = null;

  constructor(private readonly deps: RuntimeDeps) {
    this.outbox = new Outbox(
      deps.store,
      deps.bus,
      deps.logger,
      (event) => deps.observer?.published?.(event),
      (error) => deps.observer?.effectFailed?.('publish', error),
    );
    const store = deps.store;
    this.lazy = !!(store.peekActor && store.peekActors && store.startIndex && store.saveIndex);
    this.deadlines = new DeadlineIndex(deps.clock, (id) => this.wakeForTimer(id));
    this.passivation =
      this.lazy && deps.passivateAfterMs !== null && deps.passivateAfterMs !== undefined
        ? new PassivationPolicy(deps.clock, deps.passivateAfterMs, (idleSince) =>
            this.passivateIdle(idleSince),
          )
        : null;
  }

  /**
   * Restores every persisted actor, re-arms timers and resumes unfinished effects. Publishing starts with
   * `startPublishing`, once those who must act on events (the training configs) are subscribed.
   */
  async start(): Promise<void> {
    const store = this.deps.store;
    if (this.lazy && store.whenLoaded) {
      // The store reads its records after it opens: inputs and commands go ahead meanwhile (each reads its
      // actor first, see StateStore.prefetch), and records committed elsewhere are followed at once.
      this.unwatch = store.watch?.((record) => this.adopt(record)) ?? null;
      this.loaded = this.applyIndexOnceLoaded().catch((error: unknown) =>
        this.deps.logger.error({ err: error }, 'could not apply the start-up index'),
      );
      this.passivation?.start();
      return;
    }
    // A shared store's records committed elsewhere are followed from before anything is loaded: one that
    // comes while the actors load (or while the registry is brought in line, which takes a round trip per
    // model) would otherwise never reach its actor here, and its copy would stay behind until it changed
    // again. Those that come while loading wait, then go through `adopt` (which keeps the newer of two).
    const early: ActorRecord[] = [];
    let loading = true;
    this.unwatch =
      this.deps.store.watch?.((record) => (loading ? early.push(record) : this.adopt(record))) ?? null;
    const index = this.lazy ? await this.deps.store.startIndex!() : null;
    if (index) {
      // Lazy: only the actors whose committed state needs the runtime now are loaded; the others' timers
      // wait in the deadline index, and they load on their next input, command or query.
      for (const entry of index) {
        if (entry.attention) this.restore(this.deps.store.peekActor!(entry.kind, entry.key)!);
        else this.deadlines.set(`${entry.kind}:${entry.key}`, entry.deadline);
      }
    } else {
      for (const kind of ['model', 'training'] as const) {
        for (const record of await this.deps.store.loadActors(kind)) this.restore(record);
      }
      // A store written before it kept the start-up index gets it now, once.
      if (this.lazy)
        await this.deps.store.saveIndex!([...this.hosts.values()].map((h) => this.indexEntry(h)));
    }
    for (const host of this.hosts.values()) this.afterCommit(host);
    loading = false;
    for (const record of early.splice(0)) this.adopt(record);
    // A shared store (see StateStore.owns): actors this instance came to write while it started run now.
    if (this.deps.store.owns) for (const host of this.hosts.values()) this.afterCommit(host);
    this.passivation?.start();
  }

  /**
   * The start-up index of a store that reads its records after it opens, applied once it has read them all:
   * what is not resident by then (brought in by an input, a command or a record followed) is loaded if it
   * needs the runtime, and its timer indexed otherwise, as `start` does when the records are there at once.
   */
  private async applyIndexOnceLoaded(): Promise<void> {
    const index = await this.deps.store.startIndex!();
    if (this.stopped || index === null) return;
    const restored: Host[] = [];
    for (const entry of index) {
      const id = `${entry.kind}:${entry.key}`;
      if (this.hosts.has(id)) continue;
      if (!entry.attention) {
        this.deadlines.set(id, entry.deadline);
        continue;
      }
      const record = this.deps.store.peekActor!(entry.kind, entry.key);
      if (!record) continue;
      this.restore(record);
      restored.push(this.hosts.get(id)!);
    }
    for (const host of restored) this.afterCommit(host);
    // Counted or listed while part of the records was read: read again.
    this.committedCounts = { model: null, training: null };
    this.modelConfigKeys = null;
    this.outbox.catchUp();
  }

  /**
   * Resolves once the store has read every record and the runtime has applied its start-up index (at once
   * for a store that holds them when it opens). Lists, counts and timers of actors not resident are
   * complete from then on.
   */
  whenLoaded(): Promise<void> {
    return this.loaded;
  }

  /**
   * Reads what the given actors need before an input, a command or a query reaches them, while the store
   * reads its records (see StateStore.prefetch); null when nothing is to be read.
   */
  prefetch(kind: ActorKind, keys: readonly string[]): Promise<void> | null {
    const prefetch = this.deps.store.prefetch;
    if (!prefetch) return null;
    let reads: Array<Promise<void>> | null = null;
    for (const key of keys) {
      const read = prefetch.call(this.deps.store, kind, key);
      if (read) (reads ??= []).push(read);
    }
    return reads && Promise.all(reads).then(() => undefined);
  }

  /**
   * How many actors are resident now, how many were passivated since the start, and their timers: armed on
   * resident actors, and in the index for the others (tests, logs).
   */
  residency(): Residency {
    let models = 0;
    let timersArmed = 0;
    for (const host of this.hosts.values()) {
      if (host.kind === 'model') models++;
      if (host.timer) timersArmed++;
    }
    return {
      models,
      trainings: this.hosts.size - models,
      passivated: this.passivations,
      timersArmed,
      timersIndexed: this.deadlines.size,
    };
  }

  /** Publishes what was committed but not yet published (a crash between the two), then what comes. */
  startPublishing(): void {
    this.outbox.start();
  }

  /** Events committed and not yet published (waiting for the bus: NATS away, or its stream refusing them). */
  unpublishedEvents(): number {
    return this.outbox.pending();
  }

  /**
   * How many actors of a kind are in each state, without a view of each (metrics): resident ones from
   * their actor, the others counted by the store when it can.
   */
  stateCounts(kind: ActorKind): Map<string, number> {
    const counts = new Map<string, number>();
    const add = (state: string, n: number) => counts.set(state, (counts.get(state) ?? 0) + n);
    if (!this.lazy || !this.deps.store.countStates) {
      for (const view of this.views(kind)) add(view.state, 1);
      return counts;
    }
    const committed = (this.committedCounts[kind] ??= new Map(this.deps.store.countStates(kind)));
    for (const [state, n] of committed) add(state, n);
    // Resident actors may be ahead of their committed state by a commit in flight: theirs counts.
    for (const host of this.hosts.values()) {
      if (host.kind !== kind || host.revision === 0) continue;
      const committed = (host.persisted as StoredSnapshot | null)?.snapshot?.value;
      const live = String(host.actor.getSnapshot().value);
      if (committed !== undefined && String(committed) !== live) {
        add(String(committed), -1);
        add(live, 1);
      }
    }
    for (const host of this.hosts.values())
      if (host.kind === kind && host.revision === 0) add(String(host.actor.getSnapshot().value), 1);
    return counts;
  }

  /** The model actors, for status views (those not resident are read from the store, not loaded). */
  models(): Array<{ state: ModelStateName; context: ModelContext }> {
    return this.views('model') as Array<{ state: ModelStateName; context: ModelContext }>;
  }

  hasModel(modelId: string): boolean {
    return this.host('model', modelId) !== undefined;
  }

  /** The state of a model actor, without building a view (the evaluation path asks for it). */
  modelState(modelId: string): ModelStateName | null {
    const host = this.host('model', modelId);
    return host ? ((host.actor as Actor<ModelMachine>).getSnapshot().value as ModelStateName) : null;
  }

  /**
   * Whether some model, resident or only persisted, trains under this config key. Trainers ask often: the
   * first question reads every model once, and the set of their config keys is kept from then on (a model's
   * config key never changes, and every model that appears later comes through `createHost` or `adopt`).
   */
  hasModelWithConfigKey(configKey: string): boolean {
    if (this.modelConfigKeys === null) {
      const keys = new Set<string>();
      for (const view of this.views('model')) keys.add((view.context as ModelContext).configKey);
      this.modelConfigKeys = keys;
    }
    return this.modelConfigKeys.has(configKey);
  }

  model(modelId: string): { state: ModelStateName; context: ModelContext } | null {
    const host = this.host('model', modelId);
    return host ? this.modelView(host) : null;
  }

  trainings(): Array<{ state: TrainingStateName; context: TrainingContext }> {
    return this.views('training') as Array<{ state: TrainingStateName; context: TrainingContext }>;
  }

  training(configKey: string): { state: TrainingStateName; context: TrainingContext } | null {
    const host = this.host('training', configKey);
    return host ? this.trainingView(host) : null;
  }

  /**
   * The actor's snapshot as it is now, events not committed yet included (an event that changes nothing is
   * answered before the commit of what came before it), stored as persistedSnapshot's; undefined if none.
   */
  currentSnapshot(kind: ActorKind, key: string): unknown {
    const host = this.residents[kind].get(key);
    if (!host) return this.persistedSnapshot(kind, key);
    return { machine: host.actor.logic.id, snapshot: persistedSnapshotOf(host.actor) };
  }

  /** The persisted snapshot of an actor as the store would see it (tests compare against the store). */
  persistedSnapshot(kind: ActorKind, key: string): unknown {
    const host = this.residents[kind].get(key);
    if (host || !this.lazy) return host?.persisted;
    return this.deps.store.peekActor!(kind, key)?.snapshot;
  }

  /** `position`: the input's place in its log, committed with the model's state (NATS mode). */
  dispatchModel(
    modelId: string,
    event: ModelEvent,
    create?: { configKey: string },
    position?: number,
  ): Promise<Outcome> {
    return this.dispatch('model', modelId, event, create, position) as Promise<Outcome>;
  }

  dispatchTraining(configKey: string, event: TrainingEvent): Promise<TrainingOutcome> {
    return this.dispatch('training', configKey, event, { configKey }) as Promise<TrainingOutcome>;
  }

  now(): number {
    return this.deps.clock.now();
  }

  /**
   * Resolves when nothing is left to commit, publish or deliver, and every registry answer that has
   * arrived has been applied. A registry call still outstanding is the outside world: not waited for.
   * Publications are waited for until the wall clock reaches `publishUntil` (stop: a bus that keeps
   * refusing them, NATS away, must not hold a shutdown; they stay stored).
   */
  async idle(publishUntil = Infinity): Promise<void> {
    for (;;) {
      await this.flushing;
      await Promise.all([...this.inFlight]);
      await this.outbox.idle();
      await this.deps.bus.idle();
      const published = this.outbox.isIdle() || Date.now() >= publishUntil;
      if (this.batch.length === 0 && this.inFlight.size === 0 && published && !this.flushScheduled) return;
      // Events wait for their retry (the bus refused them): wait for it, never spin on settled promises (a
      // loop of microtasks would starve the very timer it waits for).
      if (this.inFlight.size === 0 && !published) await this.untilAttemptOr(publishUntil);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** The outbox's next publishing attempt, or the wall clock reaching `deadline`, whichever comes first. */
  private async untilAttemptOr(deadline: number): Promise<void> {
    if (!Number.isFinite(deadline)) return this.outbox.nextAttempt();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(deadline - Date.now(), 0));
      timer.unref();
    });
    await Promise.race([this.outbox.nextAttempt(), late]);
    clearTimeout(timer);
  }

  /**
   * Stops intake, finishes in-flight work and publications, and cancels timers. Publications the bus
   * refused (NATS away) are retried until `registryStopWaitMs`, and a rollback's registry call is waited for
   * as long: then unpublished events stay stored and go out on the next start, and a rollback stays stored
   * in rollingBack and is applied again (idempotent by its id) on the next start. Work already under way is
   * waited for until it ends: a commit or a publication in flight (NATS calls time out), a promotion's
   * registry write (retried while this instance holds the model); the service's shutdown deadline bounds it.
   */
  async stop(): Promise<void> {
    const deadline = Date.now() + (this.deps.registryStopWaitMs ?? 5_000);
    await this.idle(deadline);
    if (!this.outbox.isIdle()) {
      this.deps.logger.warn(
        { unpublished: this.outbox.pending() },
        'stopping with events not yet published; they are published on the next start',
      );
    }
    while (this.registryCalls.size > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(deadline - Date.now(), 0));
        timer.unref();
      });
      await Promise.race([Promise.all([...this.registryCalls]), late]);
      clearTimeout(timer);
      await this.idle(deadline);
    }
    if (this.registryCalls.size > 0) {
      this.deps.logger.warn(
        { calls: this.registryCalls.size },
        'stopping with registry calls unanswered; their rollbacks resume on the next start',
      );
    }
    this.stopped = true;
    this.passivation?.stop();
    this.deadlines.stop();
    this.outbox.stop();
    this.unwatch?.();
    for (const host of this.hosts.values()) {
      if (host.timer) this.deps.clock.clearTimeout(host.timer.handle);
      host.actor.stop();
    }
  }

  // ---------------------------------------------------------------------------------------------

  private modelView(host: Host) {
    const snapshot = (host.actor as Actor<ModelMachine>).getSnapshot();
    return { state: snapshot.value as ModelStateName, context: snapshot.context };
  }

  private trainingView(host: Host) {
    const snapshot = (host.actor as Actor<TrainingMachine>).getSnapshot();
    return { state: snapshot.value as TrainingStateName, context: snapshot.context };
  }

  private newActor(kind: ActorKind, key: string, configKey: string, persisted: unknown): AnyActor {
    const machineId = kind === 'model' ? this.deps.modelMachine.id : this.deps.trainingMachine.id;
    // A record written by an earlier machine version (another instance mid-upgrade) is migrated first.
    const current = persisted ? migrateSnapshot(persisted as StoredSnapshot, machineId) : null;
    const snapshot = current?.snapshot;
    const options = {
      id: `${kind}:${key}`,
      ...(snapshot ? { snapshot: snapshot as never } : {}),
      ...(this.deps.inspect ? { inspect: this.deps.inspect } : {}),
    };
    return kind === 'model'
      ? createActor(this.deps.modelMachine, { input: { modelId: key, configKey }, ...options })
      : createActor(this.deps.trainingMachine, { input: { configKey: key }, ...options });
  }

  private attach(host: Host, actor: AnyActor): void {
    host.actor = actor;
    (actor as Actor<ModelMachine>).on('*', (emitted) => host.emitted.push(emitted));
    // An actor without an error observer makes XState rethrow a failed step as an uncaught exception, which
    // would end the process; `apply` reads the error from the snapshot and answers the one input instead.
    (actor as Actor<ModelMachine>).subscribe({ error: () => undefined });
    actor.start();
  }

  /**
   * The error an input gets when processing it failed inside Warden: a stable code and an error id; the
   * details go to the log only, under that id.
   */
  private internalFailure(
    host: { kind: ActorKind; key: string; log: Logger },
    event: { type: string },
    cause: unknown,
  ) {
    const errorId = randomUUID();
    host.log.error({ err: cause, errorId, event: event.type }, `processing ${event.type} failed`);
    this.deps.observer?.effectFailed?.('processing', cause);
    return new WardenError(
      'internal',
      `Warden could not process ${event.type} for ${host.kind} ${host.key}: internal error ${errorId} (the log has the details); its state is unchanged`,
      { cause, errorId },
    );
  }

  private createHost(kind: ActorKind, key: string, configKey: string, record?: ActorRecord): Host {
    const logger = this.deps.logger;
    const host: Host = {
      kind,
      key,
      actor: undefined as unknown as AnyActor,
      configKey,
      revision: record?.revision ?? 0,
      position: record?.position ?? 0,
      persisted: record?.snapshot ?? null,
      emitted: [],
      timer: null,
      handingBack: null,
      parked: null,
      outcomeUnknown: false,
      learning: false,
      registryWrites: 0,
      registryTail: null,
      pointerMayLag: record !== undefined && this.pointerMayLagIn(record),
      unindexed: record !== undefined && record.attention === undefined,
      lookAgain: null,
      pointerRetries: 0,
      touchedAt: this.deps.clock.now(),
      // The child logger is made when first used: most actors never log, and each costs memory.
      get log(): Logger {
        const log = logger.child(kind === 'model' ? { modelId: key } : { configKey: key });
        Object.defineProperty(this, 'log', { value: log });
        return log;
      },
    };
    this.attach(host, this.newActor(kind, key, configKey, host.persisted));
    this.hosts.set(`${kind}:${key}`, host);
    this.residents[kind].set(key, host);
    if (kind === 'model') this.modelConfigKeys?.add(configKey);
    return host;
  }

  private restore(stored: ActorRecord): void {
    const expected = stored.kind === 'model' ? this.deps.modelMachine.id : this.deps.trainingMachine.id;
    const wrapped = migrateSnapshot(stored.snapshot as StoredSnapshot, expected);
    if (wrapped === null) {
      throw new WardenError(
        'internal',
        `cannot restore ${stored.kind} ${stored.key}: stored for machine ${(stored.snapshot as StoredSnapshot).machine}, this build runs ${expected}`,
      );
    }
    const record = wrapped === stored.snapshot ? stored : { ...stored, snapshot: wrapped };
    const configKey = (wrapped.snapshot?.context as { configKey?: string } | undefined)?.configKey;
    this.createHost(record.kind, record.key, configKey ?? record.key, record);
  }

  private dispatch(
    kind: ActorKind,
    key: string,
    event: ModelEvent | TrainingEvent,
    create: { configKey: string } | undefined,
    position?: number,
  ): Promise<Outcome | TrainingOutcome> {
    if (this.stopped)
      return Promise.reject(new WardenError('unavailable', 'Warden is shutting down', { retryable: true }));
    // The rule of order after a failure (see applyAlone) comes first: an actor that failed may be gone.
    if (position !== undefined && this.reverted.size > 0 && this.reverted.has(`${kind}:${key}`))
      return Promise.reject(revertedError(kind, key));
    let host: Host | undefined;
    try {
      host = this.host(kind, key);
    } catch (error) {
      return Promise.reject(this.internalFailure({ kind, key, log: this.deps.logger }, event, error));
    }
    if (!host) {
      if (!create) return Promise.reject(new UnknownModelError(key));
      try {
        host = this.createHost(kind, key, create.configKey);
      } catch (error) {
        return Promise.reject(this.internalFailure({ kind, key, log: this.deps.logger }, event, error));
      }
    }
    const target = host;
    this.fireIfDue(target, event);
    return new Promise((resolve, reject) =>
      this.applyAlone(target, event, create, resolve, reject, position),
    );
  }

  /**
   * Applies one event; whatever fails (the step, or what follows it: outcome, timeline, observers), the actor
   * goes back to its committed state and only this event's caller hears of it. A first application and one
   * after a failed commit (retryBatch) go through here alike, and so does the rule of order after a failure.
   */
  private applyAlone(
    host: Host,
    event: ModelEvent | TrainingEvent,
    create: { configKey: string } | undefined,
    resolve: PendingDispatch['resolve'],
    reject: PendingDispatch['reject'],
    position?: number,
  ): void {
    // An input with a log position is not applied ahead of an earlier one of its actor that failed in this
    // turn (that one comes again, and must come first).
    if (position !== undefined && this.reverted.has(idOf(host))) {
      reject(revertedError(host.kind, host.key));
      return;
    }
    try {
      this.apply(host, event, create, resolve, reject, position);
    } catch (error) {
      try {
        this.replaceActor(host);
      } catch (restoreError) {
        host.log.error({ err: restoreError }, 'could not restore the committed state');
      }
      this.dropUncommitted(host, position);
      reject(this.internalFailure(host, event, error));
    }
  }

  private apply(
    host: Host,
    event: ModelEvent | TrainingEvent,
    create: { configKey: string } | undefined,
    resolve: PendingDispatch['resolve'],
    reject: PendingDispatch['reject'],
    position?: number,
  ): void {
    const before = host.actor.getSnapshot();
    host.emitted = [];
    (host.actor as Actor<ModelMachine>).send(event as ModelEvent);
    const after = host.actor.getSnapshot();
    if (after.status === 'error') {
      // A bug in a step: put the actor back as it was committed and report it, never crash the service.
      const error = after.error;
      host.emitted = [];
      this.replaceActor(host);
      this.dropUncommitted(host, position);
      reject(this.internalFailure(host, event, error));
      return;
    }
    const emitted = host.emitted;
    host.emitted = [];
    // A state that does not accept the event leaves it unhandled: nothing changes, and the caller hears why.
    const machine = host.kind === 'model' ? this.deps.modelMachine : this.deps.trainingMachine;
    const outcome = (machine.outcomeOf as (e: typeof event) => Outcome | TrainingOutcome | undefined)(
      event,
    ) ?? {
      kind: 'stale' as const,
      reason: `${event.type} is not accepted in ${String(before.value)}`,
    };
    if (outcome.kind === 'stale' && host.outcomeUnknown) {
      // Nothing changed; refused by a copy that may be behind what is stored: it comes again (see Host).
      this.learnWhatIsStored(host);
      reject(
        new WardenError(
          'unavailable',
          `${event.type} is not accepted in ${String(before.value)}, but ${host.kind} ${host.key} may be further on: its last commit got no answer; try again`,
          { retryable: true },
        ),
      );
      return;
    }
    const publications = emitted.map((e) => e.event);
    this.deps.observer?.outcome?.(host.kind, host.key, event.type, outcome);
    if (before.value !== after.value) {
      host.log.info({ from: before.value, to: after.value, event: event.type }, 'transition');
      this.deps.observer?.transition?.(
        host.kind,
        host.key,
        String(before.value),
        String(after.value),
        event.type,
      );
    }
    const changed = before.value !== after.value || before.context !== after.context || host.revision === 0;
    if (!changed && publications.length === 0) {
      resolve(outcome);
      return;
    }
    this.batch.push({
      host,
      event,
      create,
      position,
      outbox: publications.length === 0 ? NO_OUTBOX : this.toOutbox(publications),
      history: publications.length === 0 ? NO_HISTORY : toHistory(publications),
      timeline: timelineEntry(
        host.kind,
        host.key,
        String(before.value),
        String(after.value),
        event,
        outcome,
        publications,
      ),
      outcome,
      resolve,
      reject,
    });
    this.scheduleFlush();
  }

  private toOutbox(publications: readonly OutputEvent[]): OutboxEntry[] {
    return publications.map((p) => ({
      id: p.payload.event_id,
      subject: subjectFor(this.deps.prefix, p),
      payload: p.payload,
    }));
  }

  /**
   * An input failed and its actor went back to its committed snapshot: the events it took before in this
   * turn, not committed yet, are no longer in it. They fail too (retryable: they are applied again, in
   * order). A failed input with a log position (see dispatchModel) also fails the positioned inputs of the
   * actor that follow in this turn, so that none is applied ahead of it.
   */
  private dropUncommitted(host: Host, position: number | undefined): void {
    const dropped = this.batch.filter((d) => d.host === host);
    if (dropped.length > 0) this.batch = this.batch.filter((d) => d.host !== host);
    for (const d of dropped) d.reject(revertedError(host.kind, host.key));
    this.followParked(host);
    this.forgetIfNeverStored(host);
    const id = idOf(host);
    if (position === undefined || this.reverted.has(id)) return;
    this.reverted.add(id);
    setImmediate(() => this.reverted.delete(id));
  }

  /**
   * A copy made by an input whose write failed, with nothing of it stored: it goes, so that no view shows an
   * actor that does not exist (a model with no version). The input that comes again makes it again. It
   * stays while its last write may have landed (see Host.outcomeUnknown), while anything of it is pending,
   * and while a record of another instance waits for it (it is followed instead).
   */
  private forgetIfNeverStored(host: Host): void {
    const id = idOf(host);
    if (host.revision !== 0 || host.outcomeUnknown || host.parked || this.pendingFor(host)) return;
    if (host.handingBack !== null || host.registryWrites > 0 || this.hosts.get(id) !== host) return;
    if (host.timer) this.deps.clock.clearTimeout(host.timer.handle);
    host.timer = null;
    this.hosts.delete(id);
    this.residents[host.kind].delete(host.key);
    host.actor.stop();
    // Its config key may have been counted for it alone: read the models' keys again when next asked.
    if (host.kind === 'model') this.modelConfigKeys = null;
  }

  /** Back to the last committed snapshot (or to a fresh actor, when nothing was committed yet). */
  private replaceActor(host: Host): void {
    host.actor.stop();
    this.attach(host, this.newActor(host.kind, host.key, host.configKey, host.persisted));
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate lets every dispatch of this tick join one transaction.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flushing = this.flushing
        .then(() => this.flush())
        .catch((error: unknown) => {
          // A bug in the commit path must not stop every later commit (nor the process).
          this.deps.logger.error({ err: error }, 'committing a batch failed unexpectedly');
          this.deps.observer?.effectFailed?.('commit', error);
        });
    });
  }

  private async flush(attempt = 1): Promise<void> {
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    try {
      await this.commitBatch(batch, attempt);
    } catch (error) {
      // Every caller hears back (a settled promise ignores a second answer); nobody waits forever.
      for (const d of batch) d.reject(this.internalFailure(d.host, d.event, error));
      throw error;
    } finally {
      for (const d of batch) this.followParked(d.host);
    }
  }

  private async commitBatch(batch: PendingDispatch[], attempt: number): Promise<void> {
    // One pass over the batch: per actor, the highest input position and whether it was promoted.
    const seen = new Map<Host, { position: number; promoted: boolean }>();
    for (const d of batch) {
      let own = seen.get(d.host);
      if (!own) seen.set(d.host, (own = { position: d.host.position, promoted: false }));
      if (d.position !== undefined && d.position > own.position) own.position = d.position;
      if (d.outcome.kind === 'promoted') own.promoted = true;
    }
    const hosts = [...seen.keys()];
    const records: ActorRecord[] = hosts.map((host) => {
      const { position, promoted } = seen.get(host)!;
      return {
        kind: host.kind,
        key: host.key,
        snapshot: { machine: host.actor.logic.id, snapshot: persistedSnapshotOf(host.actor) },
        revision: host.revision,
        ...(position > 0 ? { position } : {}),
        ...this.indexOf(host, promoted),
      };
    });
    for (const host of hosts) this.committing.add(host);
    let results: PartResult[];
    try {
      results = await this.commit(batch, hosts, records);
    } finally {
      for (const host of hosts) this.committing.delete(host);
    }
    const written = new Set<Host>();
    const carried: OutboxEntry[] = [];
    let failure: unknown = null;
    hosts.forEach((host, i) => {
      const result = results[i]!;
      if (result.ok) {
        if (result.carried) carried.push(...result.carried);
        this.countCommitted(host.kind, host.revision === 0 ? null : host.persisted, records[i]!.snapshot);
        host.revision = result.revision;
        host.position = records[i]!.position ?? 0;
        host.persisted = records[i]!.snapshot;
        host.outcomeUnknown = false;
        host.unindexed = false; // the commit wrote the index with the snapshot
        written.add(host);
        return;
      }
      if (result.outcomeUnknown) host.outcomeUnknown = true;
      if (failure === null || !(result.error instanceof ConflictError)) failure = result.error;
    });
    const done = batch.filter((d) => written.has(d.host));
    for (const d of done) {
      if (d.host.kind === 'model' && d.outcome.kind === 'promoted')
        this.recordPromotion(d.host, d.event, d.outcome.version);
    }
    // Effects and timers follow committed state only: an actor that took more events while this commit was
    // in flight (an asynchronous store) gets them with its next commit.
    for (const host of written) if (!this.batch.some((d) => d.host === host)) this.afterCommit(host);
    // What earlier commits of these actors left unpublished elsewhere goes first (see PartResult.carried).
    this.outbox.enqueue([...carried, ...done.flatMap((d) => d.outbox)]);
    for (const d of done) d.resolve(d.outcome);
    if (written.size < hosts.length) {
      const failed = batch.filter((d) => !written.has(d.host));
      await this.retryBatch(
        failed,
        hosts.filter((h) => !written.has(h)),
        failure,
        attempt,
      );
    }
  }

  /**
   * One atomic commit for the whole batch; or, when the store is atomic per actor only, one part per actor,
   * all at once. Either way, one result per host.
   */
  private async commit(
    batch: PendingDispatch[],
    hosts: Host[],
    records: ActorRecord[],
  ): Promise<PartResult[]> {
    const store = this.deps.store;
    try {
      if (store.commitEach) {
        return await store.commitEach(
          hosts.map((host, i) => {
            const own = batch.filter((d) => d.host === host);
            return {
              actors: [records[i]!],
              outbox: own.flatMap((d) => d.outbox),
              history: own.flatMap((d) => d.history),
              timeline: own.flatMap((d) => d.timeline ?? []),
            };
          }),
        );
      }
      const revisions = await store.commit({
        actors: records,
        outbox: batch.flatMap((d) => d.outbox),
        history: batch.flatMap((d) => d.history),
        timeline: batch.flatMap((d) => d.timeline ?? []),
      });
      return revisions.map((revision) => ({ ok: true, revision }));
    } catch (error) {
      return hosts.map(() => ({ ok: false, error }));
    }
  }

  /**
   * A failed commit wrote nothing: put every actor of the batch back to its committed snapshot (re-read
   * from the store when another instance changed it) and apply the same events again.
   */
  private async retryBatch(
    batch: PendingDispatch[],
    hosts: Host[],
    error: unknown,
    attempt: number,
  ): Promise<void> {
    let retry = error instanceof ConflictError && attempt < MAX_COMMIT_ATTEMPTS;
    if (retry) {
      try {
        for (const host of hosts) {
          const fresh = await this.deps.store.loadActor(host.kind, host.key);
          host.persisted = fresh?.snapshot ?? null;
          this.committedCounts[host.kind] = null; // another writer committed it
          host.revision = fresh?.revision ?? 0;
          host.position = fresh?.position ?? 0;
          host.outcomeUnknown = false; // read from the store: what is stored is known
        }
      } catch (loadError) {
        retry = false;
        error = loadError;
      }
    }
    // Dispatches that reached these actors while the commit was in flight ran on the snapshot being
    // replaced: take them out of the next batch and apply them again, after the failed ones.
    const later = this.batch.filter((d) => hosts.includes(d.host));
    this.batch = this.batch.filter((d) => !hosts.includes(d.host));
    for (const host of hosts) this.replaceActor(host);
    if (!retry) {
      this.deps.observer?.effectFailed?.('commit', error);
      // Losing every attempt to other instances is contention, not bad input: the caller may retry.
      const reason =
        error instanceof ConflictError
          ? new WardenError('unavailable', `could not commit after ${attempt} attempts: ${error.message}`, {
              retryable: true,
              cause: error,
            })
          : error;
      for (const d of batch) d.reject(reason);
    }
    for (const d of retry ? [...batch, ...later] : later)
      this.applyAlone(d.host, d.event, d.create, d.resolve, d.reject, d.position);
    if (retry) await this.flush(attempt + 1);
    // Back on committed state, its own or the one read again: its effects and timers apply. A commit that
    // took more events skipped them, and events applied again that change nothing (found applied in the
    // state read again) commit nothing that would start them.
    for (const host of hosts) if (!this.pendingFor(host)) this.afterCommit(host);
    for (const host of hosts) this.forgetIfNeverStored(host);
  }

  /**
   * Reads the actor from the store, for a copy whose last commit got no answer: a record newer than the copy
   * is followed (the commit landed, or another instance wrote since); the copy's own revision means nothing
   * landed, and the copy is what is stored. While the store does not answer (NATS away), the copy stays
   * uncertain, and the next refused event asks again.
   */
  private learnWhatIsStored(host: Host): void {
    if (host.learning) return;
    host.learning = true;
    this.deps.store
      .loadActor(host.kind, host.key)
      .then(
        (record) => {
          if (this.stopped || !host.outcomeUnknown || this.hosts.get(idOf(host)) !== host) return;
          if (record && record.revision > host.revision) this.adopt(record);
          // A commit of its own under way settles the question itself.
          else if (!this.pendingFor(host)) {
            host.outcomeUnknown = false;
            this.forgetIfNeverStored(host); // nothing of it landed
          }
        },
        (error: unknown) => {
          // Stopped meanwhile (the store closed under the read): nothing to ask again.
          if (this.stopped) return;
          host.log.warn(
            { err: error },
            'could not read what is stored yet; the next refused event asks again',
          );
        },
      )
      .finally(() => (host.learning = false));
  }

  /**
   * Another instance committed this actor (a store shared by several instances): follow it, unless ours is
   * as new; while a commit of ours is pending, once it is settled (see parked, followParked).
   */
  private adopt(record: ActorRecord): void {
    if (this.stopped) return;
    this.committedCounts[record.kind] = null; // committed by another writer: read the counts again
    const id = `${record.kind}:${record.key}`;
    const host = this.hosts.get(id);
    try {
      // Not resident, and nothing for this instance to run now (another instance writes it, or its state
      // needs no runtime): nothing to follow but its next timer (and, for a model new here, its config key).
      const owned = this.deps.store.owns?.(record.kind, record.key) ?? true;
      if (!host && this.lazy && (record.attention === false || !owned)) {
        this.deadlines.set(id, record.deadline ?? null);
        const configKey = (record.snapshot as StoredSnapshot | null)?.snapshot?.context as
          { configKey?: unknown } | undefined;
        if (record.kind === 'model' && typeof configKey?.configKey === 'string')
          this.modelConfigKeys?.add(configKey.configKey);
        return;
      }
      if (!host) {
        this.restore(record);
        this.afterCommit(this.hosts.get(id)!);
        return;
      }
      if (record.revision <= host.revision) return;
      if (this.pendingFor(host)) {
        // That commit conflicts and reloads; but one that fails for a reason of its own (NATS away) leaves
        // the copy on its own last commit, and the watch brings this record only once.
        if (!host.parked || record.revision > host.parked.revision) host.parked = record;
        return;
      }
      host.parked = null;
      host.revision = record.revision;
      host.position = record.position ?? 0;
      host.outcomeUnknown = false;
      host.unindexed = record.attention === undefined;
      if (host.registryWrites === 0) {
        if (this.pointerMayLagIn(record)) host.pointerMayLag = true;
        else this.pointerSettled(host); // its writer brought it in line
      }
      host.persisted = record.snapshot;
      this.replaceActor(host);
      this.afterCommit(host);
    } catch (error) {
      this.deps.logger.error(
        { err: error, actor: id },
        'could not follow an actor committed by another instance',
      );
    }
  }

  /** A commit of this copy is settled (or its inputs were dropped): the record parked meanwhile, if newer. */
  private followParked(host: Host): void {
    const record = host.parked;
    if (!record || this.pendingFor(host)) return;
    host.parked = null;
    if (this.hosts.get(idOf(host)) === host) this.adopt(record);
  }

  private track<T>(promise: Promise<T>): void {
    const tracked = promise.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private recordPromotion(host: Host, event: ModelEvent | TrainingEvent, version: string): void {
    const at = (event as { at: number }).at;
    host.registryWrites++;
    this.track(
      this.inRegistryOrder(host, () => this.deps.registry.recordPromotion(host.key, version, at, 'promoted'))
        .then(() => this.pointerSettled(host))
        .catch((error) => {
          host.pointerMayLag = true;
          this.deps.observer?.effectFailed?.('registry.recordPromotion', error);
          if (error instanceof WardenError && error.retryable)
            // The model moved to another instance, or the connection closed: its next writer reconciles.
            host.log.warn({ err: error }, 'the promotion was not recorded in the registry here');
          else host.log.error({ err: error }, 'could not record the promotion in the registry');
        })
        .finally(() => this.registryWriteEnded(host)),
    );
  }

  /**
   * The pointer is brought in line with the model's committed state, by its writer, when that state may be
   * ahead of it (see Host.pointerMayLag): after a crash between a commit and its registry write, on start or
   * on taking the model over, or after a write of this instance that failed. The state is read when the
   * write's turn comes (in registry order), so a rollback decided meanwhile is applied after it, over it.
   */
  private reconcilePointer(host: Host): void {
    host.registryWrites++;
    let settled = false;
    this.track(
      this.inRegistryOrder(host, async () => {
        const { state, context } = this.modelView(host);
        if (state === 'rollingBack') return; // its rollback's write comes next, and settles it
        settled = true;
        const version = context.productionVersion;
        if (version === null) return; // never promoted: nothing to point at
        const pointer = await this.deps.registry.production(host.key);
        if (pointer?.version === version) return;
        await this.deps.registry.recordPromotion(host.key, version, this.deps.clock.now(), 'reconciled');
        host.log.info(
          { from: pointer?.version ?? null, to: version },
          'the registry pointer was brought in line',
        );
      })
        .then(() => {
          if (settled) this.pointerSettled(host);
        })
        .catch((error: unknown) => {
          host.pointerRetries++;
          this.deps.observer?.effectFailed?.('registry.reconcile', error);
          host.log.warn(
            { err: error, retryInMs: this.pointerRetryDelay(host) },
            'could not bring the registry pointer in line yet',
          );
        })
        .finally(() => this.registryWriteEnded(host)),
    );
  }

  /**
   * One of the model's registry writes ended. Once none is left: with the pointer in line, the start-up index
   * no longer needs to load the model. Otherwise its writer brings the pointer in line: here, after a pause
   * that grows with each attempt that failed (a registry that keeps refusing is not asked in a loop);
   * elsewhere, from the record it takes over, which still says so.
   */
  private registryWriteEnded(host: Host): void {
    if (--host.registryWrites > 0) return;
    if (!host.pointerMayLag) this.clearAttention(host);
    else if (!this.owns(host)) this.pointerSettled(host);
    else this.lookAgainLater(host, this.pointerRetryDelay(host));
  }

  /**
   * Nothing for this instance to bring in line (the pointer was written, or is another writer's to bring
   * in line): the next failed write is tried again after a second, not after the wait of the last attempt.
   */
  private pointerSettled(host: Host): void {
    host.pointerMayLag = false;
    host.pointerRetries = 0;
  }

  /** 1 s after a promotion's write failed, then twice as long after each failed attempt, at most a minute. */
  private pointerRetryDelay(host: Host): number {
    return Math.min(TIMER_RETRY_MS * 2 ** host.pointerRetries, POINTER_RETRY_MAX_MS);
  }

  /** A model record this instance writes, whose state may be ahead of the registry pointer. */
  private pointerMayLagIn(record: ActorRecord): boolean {
    return (
      record.kind === 'model' &&
      record.attention !== false &&
      (this.deps.store.owns?.('model', record.key) ?? true)
    );
  }

  /**
   * The promotion writes are done: the start-up index no longer needs to load this actor (it said so since
   * the promotion's commit).
   */
  private clearAttention(host: Host): void {
    this.saveIndexOf(host, (entry) => !entry.attention);
  }

  /**
   * Writes the actor's start-up index on top of its stored record, as bookkeeping (no commit), if `wanted`.
   * Only for committed state with nothing in flight: a commit writes the index anyway.
   */
  private saveIndexOf(host: Host, wanted: (entry: IndexEntry) => boolean = () => true): void {
    if (!this.lazy || this.stopped || host.revision === 0 || this.pendingFor(host)) return;
    if (this.residents[host.kind].get(host.key) !== host) return;
    const entry = this.indexEntry(host);
    if (!wanted(entry)) return;
    host.unindexed = false;
    this.deps.store.saveIndex!([entry]).catch((error: unknown) =>
      host.log.warn({ err: error }, 'could not update the start-up index'),
    );
  }

  /** Runs a registry write of the model after its earlier ones have ended, whatever their result. */
  private inRegistryOrder(host: Host, write: () => Promise<void>): Promise<void> {
    const result = host.registryTail ? host.registryTail.then(write) : write();
    const tail: Promise<void> = result
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        if (host.registryTail === tail) host.registryTail = null;
      });
    host.registryTail = tail;
    return result;
  }

  /** Committed state decides what runs next: the rollback effect, deferred inputs, the timer. */
  private afterCommit(host: Host): void {
    try {
      this.startWhatIsDue(host);
    } catch (error) {
      host.log.error({ err: error }, 'could not start the effects and timers of committed state');
      this.deps.observer?.effectFailed?.('afterCommit', error);
    }
  }

  /**
   * Whether this instance writes the actor (a store shared by instances that each write part of the
   * actors, see StateStore.owns): elsewhere its effects and timers do not run; the writer runs them.
   */
  private owns(host: Host): boolean {
    return this.deps.store.owns?.(host.kind, host.key) ?? true;
  }

  private startWhatIsDue(host: Host): void {
    if (!this.owns(host)) {
      // Its writer runs what its state calls for, and the writer's commit brings the next state here. Until
      // then its timer stays armed and what it calls for is looked at again every second: if this instance
      // comes to write the actor again without being told (a claim that failed), it acts then.
      this.armTimers(host);
      if (host.kind === 'model') {
        const { state, context } = this.modelView(host);
        if (state === 'rollingBack' || deferredOf(context).length > 0) this.lookAgainLater(host);
      }
      return;
    }
    if (host.unindexed) this.saveIndexOf(host);
    if (host.kind === 'model') {
      const { state, context } = this.modelView(host);
      if (state === 'rollingBack' && context.rollback) this.runRollback(host, context);
      if (state !== 'rollingBack') this.handBackDeferred(host, context);
      if (host.pointerMayLag && host.registryWrites === 0 && state !== 'rollingBack')
        this.reconcilePointer(host);
    }
    this.armTimers(host);
  }

  /** The next input kept while a rollback was in flight goes back to its actor, oldest first. */
  private handBackDeferred(host: Host, context: ModelContext): void {
    const next = deferredOf(context)[0];
    if (next === undefined || host.handingBack === next.id || this.stopped) return;
    host.handingBack = next.id;
    host.log.info(
      { deferredId: next.id, event: next.event.type },
      'applying an input kept during the rollback',
    );
    const event: ModelEvent = { ...next.event, at: this.deps.clock.now(), deferredId: next.id };
    this.track(
      this.dispatch('model', host.key, event, undefined).then(
        () => {
          const head = deferredOf(this.modelView(host).context)[0];
          if (head?.id === next.id) {
            // The machine did not take it off the queue: a bug; never spin on it (a restart tries again).
            host.log.error({ deferredId: next.id }, 'a deferred input was handed back but not taken');
            return;
          }
          if (host.handingBack === next.id) host.handingBack = null;
          // Its commit handed back the next one already; a stale one is looked at again here.
          if (!this.pendingFor(host)) this.afterCommit(host);
        },
        (error: unknown) => {
          // Not applied (a failed commit, or not the writer in NATS mode): tried again a second later.
          host.log.warn({ err: error, deferredId: next.id }, 'could not apply a deferred input yet');
          if (host.handingBack === next.id) host.handingBack = null;
          this.lookAgainLater(host);
        },
      ),
    );
  }

  /** One actor's committed state moved from `before` (null: new) to `after`: the kept counts follow. */
  private countCommitted(kind: ActorKind, before: unknown, after: unknown): void {
    const counts = this.committedCounts[kind];
    if (!counts) return;
    const stateOf = (stored: unknown) => {
      const value = (stored as StoredSnapshot | null)?.snapshot?.value;
      return value === undefined ? null : String(value);
    };
    const from = stateOf(before);
    const to = stateOf(after);
    if (from === to) return;
    if (from !== null) counts.set(from, (counts.get(from) ?? 0) - 1);
    if (to !== null) counts.set(to, (counts.get(to) ?? 0) + 1);
  }

  /** An event of this actor waits for its commit (then `afterCommit` follows anyway). */
  private pendingFor(host: Host): boolean {
    return this.committing.has(host) || this.batch.some((d) => d.host === host);
  }

  /** The deadline in the actor's committed context, and the event it fires. */
  private deadlineOf(host: Host): { at: number | null; type: TimerEvent } {
    if (host.kind === 'training') {
      const { state, context } = this.trainingView(host);
      return { at: state === 'paused' ? context.autoResumeAt : null, type: 'AUTO_RESUME_ELAPSED' };
    }
    const { state, context } = this.modelView(host);
    if (state === 'awaitingApproval')
      return { at: context.pending?.deadline ?? null, type: 'APPROVAL_EXPIRED' };
    const cooldown =
      state === 'cooldown' || state === 'rolledBack'
        ? cooldownDeadline(state, context, this.deps.modelPolicy)
        : null;
    return { at: cooldown, type: 'COOLDOWN_ELAPSED' };
  }

  private armTimers(host: Host): void {
    const { at, type } = this.deadlineOf(host);
    this.armTimer(host, at, type);
  }

  /**
   * One timer per actor, armed from the deadline in its committed context (the same after a restart). A
   * timer never delivers its event before the deadline by the clock the machine reads: a platform timer
   * that fires early (Node's often does, by a millisecond) waits for the rest. The event carries the
   * deadline it was armed for; whatever the machine makes of it, the timer is armed again from the
   * committed state afterwards, so no deadline is ever left without a timer.
   */
  private armTimer(host: Host, at: number | null, type: TimerEvent, delayMs?: number): void {
    // A host passivated since (a stale reference): its deadline is in the index.
    if (this.residents[host.kind].get(host.key) !== host) return;
    // Armed already for this deadline, and not for later than now asks (a try again put off by a second).
    const armed = host.timer;
    if (
      delayMs === undefined &&
      armed?.at === at &&
      armed.type === type &&
      armed.firesAt <= Math.max(at ?? 0, this.deps.clock.now())
    )
      return;
    if (host.timer) this.deps.clock.clearTimeout(host.timer.handle);
    host.timer = null;
    if (at === null || this.stopped) return;
    const deadline = at;
    const fire = (): void => this.fireTimer(host, deadline, type);
    const ms = delayMs ?? Math.max(deadline - this.deps.clock.now(), 0);
    const firesAt = this.deps.clock.now() + ms;
    host.timer = { at: deadline, type, firesAt, handle: this.deps.clock.setTimeout(fire, ms) };
  }

  /** The actor's timer event, now (see armTimer). */
  private fireTimer(host: Host, deadline: number, type: TimerEvent): void {
    host.timer = null;
    // Written by another instance now: its writer runs it, and its commit brings the next deadline here
    // (see startWhatIsDue). Until then, looked at again a second later, so that the deadline still acts if
    // this instance writes the actor again without being told (a claim that failed).
    if (!this.owns(host)) {
      this.armTimer(host, deadline, type, TIMER_RETRY_MS);
      return;
    }
    const now = this.deps.clock.now();
    if (now < deadline) {
      this.armTimer(host, deadline, type);
      return;
    }
    const event = { type, at: now, deadline } as ModelEvent | TrainingEvent;
    this.track(
      this.dispatch(host.kind, host.key, event, undefined).then(
        (outcome) => {
          if (this.pendingFor(host)) return;
          const next = this.deadlineOf(host);
          if (outcome.kind === 'stale' && next.at === deadline && next.type === type) {
            // The machine and the runtime disagree on a deadline: a bug; never spin on it.
            host.log.error({ type, deadline }, 'timer event refused at its deadline; trying again later');
            this.armTimer(host, deadline, type, TIMER_RETRY_MS);
            return;
          }
          this.armTimer(host, next.at, next.type);
        },
        (error: unknown) => {
          // Refused for now (NATS away, a copy in doubt of its last commit): it passes, so a warning.
          const passing = error instanceof WardenError && error.retryable;
          host.log[passing ? 'warn' : 'error']({ err: error }, `timer ${type} failed; trying again`);
          if (!this.pendingFor(host)) this.armTimer(host, deadline, type, TIMER_RETRY_MS);
        },
      ),
    );
  }

  /**
   * A timer that is due acts before anything else reaches its actor, however late its platform timer comes
   * (a busy event loop, an actor brought back from the store after its deadline, an instance still reading
   * every actor's value): an approval is not taken after its deadline, nor an evaluation in a cooldown that
   * is over. Not a timer put off to try again later (a failed commit, an actor written elsewhere).
   */
  private fireIfDue(host: Host, event: ModelEvent | TrainingEvent): void {
    const armed = host.timer;
    if (armed === null || isTimerEvent(event.type)) return;
    const now = this.deps.clock.now();
    if (armed.at > now || armed.firesAt > now) return;
    this.deps.clock.clearTimeout(armed.handle);
    this.fireTimer(host, armed.at, armed.type);
  }

  // ---------------------------------------------------------------------------------------------
  // Lazy loading and passivation (a store that can peek): an actor is resident from its first use until
  // it has been idle for the configured time with nothing in flight; meanwhile its state is in the store
  // and its next timer in the deadline index.

  /** The resident actor, or the one brought back from the store (lazy mode); undefined if none exists. */
  private host(kind: ActorKind, key: string): Host | undefined {
    let host = this.residents[kind].get(key);
    if (!host && this.lazy && !this.stopped) {
      const record = this.deps.store.peekActor!(kind, key);
      if (record) {
        this.deadlines.delete(`${kind}:${key}`);
        this.restore(record);
        host = this.residents[kind].get(key)!;
        // Committed state decides what runs: its timer is armed again (and fires now if it is due).
        this.afterCommit(host);
      }
    }
    if (host) host.touchedAt = this.deps.clock.now();
    return host;
  }

  /** Views of every actor of a kind: resident ones from their actor, the others from their record. */
  private views(kind: ActorKind): Array<{ state: string; context: unknown }> {
    const out: Array<{ state: string; context: unknown }> = [];
    for (const host of this.hosts.values()) {
      if (host.kind === kind) out.push(kind === 'model' ? this.modelView(host) : this.trainingView(host));
    }
    if (!this.lazy) return out;
    const expected = kind === 'model' ? this.deps.modelMachine.id : this.deps.trainingMachine.id;
    for (const record of this.deps.store.peekActors!(kind)) {
      if (this.residents[kind].has(record.key)) continue;
      const snapshot = migrateSnapshot(record.snapshot as StoredSnapshot, expected)?.snapshot;
      if (snapshot?.context) out.push({ state: String(snapshot.value), context: snapshot.context });
    }
    return out;
  }

  /** A deadline in the index is due: the actor comes back, and its own timer delivers the event. */
  private wakeForTimer(id: string): void {
    const colon = id.indexOf(':');
    const kind = id.slice(0, colon) as ActorKind;
    const key = id.slice(colon + 1);
    // Written by another instance now (see StateStore.owns): the timer is that instance's, whose commit
    // brings the next deadline here. Kept meanwhile, looked at again a second later: if this instance comes
    // to write the actor again without a claim that tells it so (a claim can fail), the deadline still acts.
    if (this.deps.store.owns && !this.deps.store.owns(kind, key)) {
      if (!this.stopped) this.deadlines.set(id, this.deps.clock.now() + TIMER_RETRY_MS);
      return;
    }
    try {
      this.host(kind, key);
    } catch (error) {
      // The deadline stays: the actor is brought back for it again a second later (a timer is never lost).
      this.deps.logger.error(
        { err: error, actor: id },
        'could not bring an actor back for its timer; retrying',
      );
      this.deps.observer?.effectFailed?.('wake', error);
      if (!this.stopped && !this.hosts.has(id))
        this.deadlines.set(id, this.deps.clock.now() + TIMER_RETRY_MS);
    }
  }

  private passivateIdle(idleSince: number): void {
    let count = 0;
    for (const host of this.hosts.values()) {
      if (host.touchedAt <= idleSince && this.quiescent(host)) {
        this.passivate(host);
        count++;
      }
    }
    if (count > 0)
      this.deps.logger.info(
        { passivated: count, resident: this.hosts.size, timers: this.deadlines.size },
        'passivated idle actors',
      );
  }

  /**
   * Nothing in flight: committed, no commit pending or in doubt, no record of another instance waiting, no
   * rollback running, no inputs kept, no hand-back.
   */
  private quiescent(host: Host): boolean {
    if (
      host.revision === 0 ||
      host.outcomeUnknown ||
      host.learning ||
      host.parked !== null ||
      host.handingBack !== null ||
      host.registryWrites > 0 ||
      host.pointerMayLag ||
      this.pendingFor(host)
    )
      return false;
    if (host.kind !== 'model') return true;
    const { state, context } = this.modelView(host);
    return state !== 'rollingBack' && deferredOf(context).length === 0;
  }

  private passivate(host: Host): void {
    const id = idOf(host);
    const { at } = this.deadlineOf(host);
    // A timer tried again later (its event failed, or another instance wrote the actor) keeps that delay:
    // the index wakes the actor when the timer would have fired, not at its deadline gone by.
    const armed = host.timer;
    const wakeAt = at !== null && armed?.at === at ? Math.max(at, armed.firesAt) : at;
    if (armed) this.deps.clock.clearTimeout(armed.handle);
    host.timer = null;
    this.hosts.delete(id);
    this.residents[host.kind].delete(host.key);
    host.actor.stop();
    this.deadlines.set(id, wakeAt);
    this.passivations++;
  }

  /** The start-up index of an actor's current state (committed with it). */
  private indexOf(host: Host, promoting: boolean): { deadline: number | null; attention: boolean } {
    let attention = false;
    if (host.kind === 'model') {
      const { state, context } = this.modelView(host);
      attention =
        promoting ||
        host.registryWrites > 0 ||
        host.pointerMayLag ||
        state === 'rollingBack' ||
        deferredOf(context).length > 0;
    }
    return { deadline: this.deadlineOf(host).at, attention };
  }

  private indexEntry(host: Host): IndexEntry {
    return { kind: host.kind, key: host.key, revision: host.revision, ...this.indexOf(host, false) };
  }

  /**
   * Applies the rollback to the registry (idempotent by id) and reports the result to the actor. A rollback
   * the registry could not try here (a retryable error: the model moved to another instance, the connection
   * closed) is not a failed rollback: the result is dropped, and whoever writes the model then runs it again
   * from its committed state (here, after a pause, if this instance still does).
   */
  private runRollback(host: Host, context: ModelContext): void {
    const plan = context.rollback!;
    if (this.rollbacksRunning.has(plan.rollbackId)) return;
    this.rollbacksRunning.add(plan.rollbackId);
    const request = {
      rollbackId: plan.rollbackId,
      modelId: host.key,
      fromVersion: plan.fromVersion,
      toVersion: plan.toVersion,
      reason: plan.reason,
      at: this.deps.clock.now(),
      fromPromotion: promotionOf(context, plan.fromVersion),
    };
    const call = this.inRegistryOrder(host, () => this.deps.registry.rollback(request)).then(
      () => {
        this.pointerSettled(host); // the pointer is where the model's state will say
        return {
          type: 'ROLLBACK_SUCCEEDED' as const,
          at: this.deps.clock.now(),
          rollbackId: plan.rollbackId,
        };
      },
      (error: unknown) => {
        this.deps.observer?.effectFailed?.('registry.rollback', error);
        if (error instanceof WardenError && error.retryable) return null;
        // The registry refused it: the pointer was moved by someone else, and is not to be moved back.
        this.pointerSettled(host);
        return {
          type: 'ROLLBACK_FAILED' as const,
          at: this.deps.clock.now(),
          rollbackId: plan.rollbackId,
          error: error instanceof Error ? error.message : String(error),
        };
      },
    );
    void call.then((event) => {
      if (event === null) {
        this.rollbacksRunning.delete(plan.rollbackId);
        host.log.warn({ rollbackId: plan.rollbackId }, 'the rollback could not be tried here: it runs again');
        this.lookAgainLater(host);
        return;
      }
      // Tracked from the moment the answer arrives, so idle() waits for it to be applied.
      this.track(
        this.dispatch('model', host.key, event, undefined).then(
          () => {
            this.rollbacksRunning.delete(plan.rollbackId);
            if (!this.stopped && !this.pendingFor(host)) this.afterCommit(host);
          },
          (error: unknown) => {
            this.rollbacksRunning.delete(plan.rollbackId);
            host.log.error({ err: error }, 'could not store the rollback result; the rollback runs again');
            // The committed state is still rolling back: the rollback runs again (the registry call is
            // idempotent by id), after a pause. At once, a store that refuses every write at once (full)
            // would make it a loop of registry calls and failed commits.
            this.lookAgainLater(host);
          },
        ),
      );
    });
    const tracked = call.finally(() => this.registryCalls.delete(tracked));
    this.registryCalls.add(tracked);
  }

  /**
   * What the actor's committed state calls for (a rollback not tried, kept inputs, a pointer to bring in
   * line) is looked at again after TIMER_RETRY_MS (or `delayMs`): it runs then if this instance writes the
   * actor, else it is looked at again (see startWhatIsDue). One look pending per actor, the soonest asked
   * for: a look looks at everything, so a rollback to run again a second from now does not wait for the
   * pointer's retry a minute from now.
   */
  private lookAgainLater(host: Host, delayMs = TIMER_RETRY_MS): void {
    if (this.stopped) return;
    const at = this.deps.clock.now() + delayMs;
    const pending = host.lookAgain;
    if (pending && pending.at <= at) return;
    if (pending) this.deps.clock.clearTimeout(pending.handle);
    const look = { at, handle: null as unknown };
    host.lookAgain = look;
    look.handle = this.deps.clock.setTimeout(() => {
      if (host.lookAgain === look) host.lookAgain = null;
      if (!this.stopped && this.residents[host.kind].get(host.key) === host && !this.pendingFor(host))
        this.afterCommit(host);
    }, delayMs);
  }
}
