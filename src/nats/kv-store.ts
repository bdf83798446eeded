import type { Logger } from 'pino';
import type { KV, KvEntry } from '@nats-io/kv';
import type {
  ActorKind,
  ActorRecord,
  CommitBatch,
  HistoryRecord,
  IndexEntry,
  OutboxEntry,
  PartResult,
  StateStore,
  TimelineEntry,
  Unsubscribe,
} from '../actors/ports.ts';
import { ConflictError, WardenError } from '../domain/errors.ts';
import type { KvWrite } from './js-writer.ts';
import { entryText, isWrongRevision } from './kv-util.ts';
import { trainingEntryFrom } from './training-state.ts';
import { rememberedId } from '../machines/remembered-id.ts';

/** An actor's KV value: its snapshot, with the events and history its commits caused and nobody has moved on yet. */
interface ActorValue {
  snapshot: unknown;
  outbox: OutboxEntry[];
  history: HistoryRecord[];
  /**
   * Timeline lines committed with the snapshot (in the same revision-checked write) and not yet moved to
   * the actor's key in the timeline bucket (see moveTimeline), oldest first. Before that bucket, the newest
   * 100 lines stayed here for good, and every write of the actor carried them (about 21 KiB of 25).
   */
  timeline?: TimelineEntry[];
  /**
   * The number of the newest timeline line the actor ever had (lines are numbered from 1): the lines above
   * are the last `timeline.length` of them. Absent in values written before the timeline bucket: as many as
   * the lines held.
   */
  timelineSeq?: number;
  /** The input stream sequence of the last input applied (model actors; see ActorRecord.position). */
  position?: number;
  /** The input lease epoch of the instance that last wrote or claimed it. */
  epoch?: number;
  /**
   * The start-up index, committed with the snapshot (see ActorRecord.deadline/attention). Absent in values
   * written before it: such an actor counts as needing attention (it is loaded at start).
   */
  deadline?: number | null;
  attention?: boolean;
}

/** What fences writes that apply inputs: the lease of the actor's partition (see Lease, Partitions). */
export interface WriteFence {
  /** Held and recently renewed: this instance may apply inputs now. */
  valid(): boolean;
  /** Held, though perhaps not renewed recently enough to act. */
  readonly isHeld: boolean;
  readonly epoch: number;
}

/** Timeline lines kept per actor, in its timeline key (at most as many wait in its value to be moved there). */
const TIMELINE_KEEP = 100;
/**
 * A move costs three operations (read the timeline key, write it, write the value without the lines): done
 * for every commit, it tripled a busy actor's writes. Lines wait in the value until this many are there, or
 * until the oldest has waited `timelineMoveAfterMs`; reads show them meanwhile as well.
 */
const TIMELINE_MOVE_LINES = 8;

/**
 * `<kind>.<key>` in the timeline bucket: an actor's newest lines, oldest first, and the number of the last
 * line moved there (moving the same lines again adds nothing).
 */
interface TimelineValue {
  lines: TimelineEntry[];
  through: number;
}

/** The newest of `records` (oldest first) whose JSON fits in `maxBytes`, in order. */
function newestWithin(records: readonly HistoryRecord[], maxBytes: number): HistoryRecord[] {
  let bytes = 0;
  let first = records.length;
  while (first > 0) {
    bytes += Buffer.byteLength(JSON.stringify(records[first - 1])) + 1;
    if (bytes > maxBytes) break;
    first--;
  }
  return records.slice(first);
}

/** The number of an actor's newest timeline line (see ActorValue.timelineSeq). */
const lastLineOf = (value: ActorValue | null | undefined): number =>
  value?.timelineSeq ?? value?.timeline?.length ?? 0;

/** The lines of an actor's value numbered above `through`: those its timeline key does not hold yet. */
function linesAfter(value: ActorValue | null | undefined, through: number): TimelineEntry[] {
  const lines = value?.timeline ?? [];
  const first = lastLineOf(value) - lines.length + 1;
  return lines.filter((_, i) => first + i > through);
}

/**
 * `history.<model_id>` in the timeline bucket: the rollback history of one model, oldest first, bounded
 * (historyLimit); and `rollbacks` there: the newest RECENT_KEEP records of every model, for the fleet-wide
 * query. Before, `history.<model_id>` was a key of the actor bucket: watched, so every instance held every
 * model's history in its copy (up to 200 records a model) and read it all at start. Such keys are read
 * until the sweep has moved them (see moveLegacyHistory).
 */
interface HistoryValue {
  records: HistoryRecord[];
}
/** The fleet-wide list of the newest history records (see HistoryValue); no model key has this form. */
const RECENT_KEY = 'rollbacks';
/** The most a history query may ask for (Warden.history): the fleet-wide list keeps that many. */
const RECENT_KEEP = 1_000;
/**
 * And at most this much JSON per history key, oldest records dropped first: a record is about 560 bytes,
 * but up to a few KiB with an operator's note of 1,000 characters, and 1,000 such records would pass
 * nats-server's default max_payload (1 MB): every write of the key would then fail, and with it the settle
 * that clears the model's published events.
 */
const HISTORY_MAX_BYTES = 512 * 1024;
/**
 * History keys of the actor bucket (written by earlier builds) moved to the timeline bucket per sweep, by
 * the instance that writes the model: a few at a time, so that a deployment with a history for every model
 * is not all moved in one sweep.
 */
const LEGACY_HISTORY_MOVES = 100;

interface Cached {
  revision: number;
  value: ActorValue | HistoryValue;
  /**
   * The snapshot as stored, to tell a snapshot change from outbox bookkeeping; null until first needed (a
   * value this instance committed is compared only when another write of the key comes after it).
   */
  snapshotJson: string | null;
  /** The revision at which the snapshot last changed; later revisions only moved outbox entries on. */
  snapshotRevision: number;
}

export interface KvStoreOptions {
  /** Publishes an outbox entry (with its id as message id); the sweeper uses it for stranded entries. */
  readonly publish: (entry: OutboxEntry) => Promise<void>;
  /** Outbox entries older than this that nobody published are published by the sweeper. */
  readonly strandedAfterMs: number;
  readonly sweepEveryMs: number;
  /** Per model, the history keeps this many records. */
  readonly historyLimit: number;
  /**
   * How long a timeline line may wait in its actor's value before the sweeper moves it to the timeline
   * bucket, unless TIMELINE_MOVE_LINES wait there first (see timelineDue).
   */
  readonly timelineMoveAfterMs: number;
  /** Runs once the store is closed. */
  readonly afterClose?: () => Promise<void>;
  /**
   * The revision-checked writes of the actor bucket's keys; `kv.update` and `kv.create` when absent. NATS
   * mode sends them through a JetStreamWriter (see kvWrites: cheaper per write than nats.js's request).
   */
  readonly update?: KvWrite;
  /** Writes that apply an input (a new position) need it valid, and carry its epoch. */
  readonly fence?: (kind: ActorKind, key: string) => WriteFence;
  /** Counts operations that failed for NATS reasons (timeouts, disconnections) and were left to retry. */
  readonly onTransientFailure?: (what: string, error: unknown) => void;
  /**
   * `open` returns once the watch has started, not once it has read every value: the bucket is read in the
   * background (see whenLoaded), and what needs one actor before then reads it first (see prefetch). At a
   * million models the read takes about 30 s; the instance takes inputs meanwhile.
   */
  readonly loadInBackground?: boolean;
  /**
   * The same bucket over a connection of its own, for that first read (a million values, about 1.2 GB):
   * on the connection of the leases, the commits and the inputs, every answer would wait behind the part of
   * the read sent before it. The watch goes on over `kv` once the read has ended; `done` is then called
   * (to close that connection).
   */
  readonly firstRead?: { readonly kv: KV; readonly done: () => void };
}

export const DEFAULT_KV_STORE_OPTIONS: Omit<KvStoreOptions, 'publish'> = {
  strandedAfterMs: 30_000,
  sweepEveryMs: 5_000,
  historyLimit: 200,
  timelineMoveAfterMs: 60_000,
};

const MAX_ATTEMPTS = 20;
const CLOSE_DEADLINE_MS = 3_000;
const WATCH_STALL_MS = 3_000;
/** After a commit that failed for a NATS reason, the actor is claimed this many times (see reclaimLater). */
const RECLAIMS = 3;
const PUBLISHED_MEMORY = 20_000;
/** How long after their publication published entries are cleared from an actor's value (see markPublished). */
const SETTLE_DELAY_MS = 100;

const actorKey = (kind: ActorKind, key: string): string => `${kind}.${key}`;
const historyKey = (modelId: string): string => `history.${modelId}`;
const eventIdOf = (record: HistoryRecord): string => String(record.payload.event_id ?? '');
/** What a write changed beyond outbox bookkeeping: the snapshot, the position, or the epoch (a claim). */
const identityOf = (value: ActorValue | HistoryValue): string =>
  'snapshot' in value ? JSON.stringify([value.snapshot, value.position ?? 0, value.epoch ?? 0]) : '';

/**
 * Whether a take-over writes this actor at once. A model with nothing in flight (no rollback, no kept
 * input, a registry pointer in line, no timer, every event published: nearly all of them) is not: nothing
 * here has to run for it, the intake claims it before applying its first input under the new epoch, and
 * any write of it is revision-checked and carries the epoch. Claiming those too cost a write per model at
 * every start and take-over, 10,000 writes at 10,000 models (docs/scaling.md, item 5). Training configs
 * are few, and take events without that claim: always claimed. A value written before the start-up index
 * (no `attention`) counts as needing it.
 */
function needsClaim(kind: ActorKind | 'history', value: ActorValue | HistoryValue): boolean {
  if (kind !== 'model') return kind === 'training';
  const actor = value as ActorValue;
  return (
    actor.attention !== false ||
    (actor.deadline ?? null) !== null ||
    actor.outbox.length > 0 ||
    actor.history.length > 0
  );
}

/** The same snapshot object, position and epoch: the identity is the same without serializing it. */
const sameIdentity = (a: ActorValue | HistoryValue, b: ActorValue | HistoryValue): boolean =>
  'snapshot' in a && 'snapshot' in b
    ? a.snapshot === b.snapshot && a.position === b.position && a.epoch === b.epoch
    : !('snapshot' in a) && !('snapshot' in b);
/**
 * Whether the snapshot stored now is the one read at `revision`: only bookkeeping (published entries
 * cleared, timeline lines moved) was written since. Records report the key's revision, bookkeeping included.
 */
const snapshotSince = (cached: Cached | undefined, revision: number): boolean =>
  cached !== undefined && revision >= cached.snapshotRevision && revision <= cached.revision;

const recordOf = (kind: ActorKind, key: string, cached: Cached): ActorRecord => {
  const value = cached.value as ActorValue;
  return {
    kind,
    key,
    snapshot: value.snapshot,
    revision: cached.revision,
    ...(value.position !== undefined ? { position: value.position } : {}),
    deadline: value.deadline ?? null,
    // A value written before the index has neither: its attention is unknown (see ActorRecord.attention).
    ...(value.attention !== undefined || value.deadline !== undefined
      ? { attention: value.attention ?? false }
      : {}),
  };
};

function parseKey(key: string): { kind: ActorKind | 'history'; id: string } | null {
  const dot = key.indexOf('.');
  const kind = key.slice(0, dot);
  if (dot < 0 || (kind !== 'model' && kind !== 'training' && kind !== 'history')) return null;
  return { kind, id: key.slice(dot + 1) };
}

/**
 * Warden's durable state in a NATS KV bucket, shared by every instance:
 * - `model.<id>` / `training.<key>`: the actor snapshot, and the outbox entries and history records its
 *   commits caused that are not yet published. One revision-checked write per actor: two instances never
 *   both commit on the same revision (the loser gets a ConflictError and the runtime reloads).
 * - `history.<model_id>`: rollback history written by builds before the timeline bucket held it; read until
 *   the sweep moves it there.
 * The timeline bucket, read on demand and never watched, holds what only a person asks for: each actor's
 * timeline lines, each model's rollback history (`history.<model_id>`, moved there once its events are
 * published) and the fleet's newest (`rollbacks`).
 * It also keeps `<prefix>_training` (what trainers read) in line with the training-config actors.
 *
 * Every instance watches the bucket and keeps the latest values in memory: loads are local, and live
 * actors follow what other instances commit (`watch`).
 */
export class KvStore implements StateStore {
  private readonly cache = new Map<string, Cached>();
  private readonly listeners = new Set<(record: ActorRecord) => void>();
  /** Event ids published (by anyone here), remembered so that carried-over outbox entries can be dropped. */
  private readonly published = new Map<string, true>();
  /**
   * Outbox entries this instance's runtime publishes (committed here, or handed to it as pending at its
   * start), until they are published: its outbox sends them in commit order, ahead of anything committed
   * later here. Any other unpublished entry in an actor's value was committed elsewhere (see commitPart).
   */
  private readonly mine = new Set<string>();
  /**
   * Every outbox entry in a cached actor value, by event id: the actor's key, and when the entry was first
   * seen here (for the sweeper). Marking a page of events published finds their actors here, without a scan
   * of every cached value per page (tens of thousands of actors in NATS mode, every one resident).
   */
  private readonly outboxEntries = new Map<string, { readonly key: string; readonly since: number }>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly projected = new Map<string, { revision: number; json: string } | null>();
  private readonly tasks = new Set<Promise<unknown>>();
  private readonly settledWaiters = new Map<string, Set<() => void>>();
  private readonly reclaiming = new Set<string>();
  /**
   * This instance's writes to the actor bucket still waiting for their answer, by key: the text written, and
   * the watch's entry for it if that came first (it usually does: the server sends the stored message to the
   * watch before it answers the write). Such an entry is kept, not decoded (see absorb); a write whose
   * answer is lost takes it in then, so that the copy follows what landed.
   */
  private readonly ownWrites = new Map<string, Array<{ readonly json: string; echo: KvEntry | null }>>();
  /** Actors with published entries to clear, and the timer that clears them (see markPublished). */
  private readonly toSettle = new Set<string>();
  /**
   * The keys the sweep has work for, kept as values come and go (see indexKey): actor values holding outbox
   * entries or history records, actor values holding timeline lines, history keys an earlier build wrote,
   * and training configs. The sweep looked at every cached value instead, every few seconds: 24-125 ms of
   * the event loop at 100,000 models, and the lease renews on that loop.
   */
  private readonly withEntries = new Set<string>();
  private readonly withLines = new Set<string>();
  private readonly legacyHistory = new Set<string>();
  private readonly trainingKeys = new Set<string>();
  /** And the actors a take-over claims at once (see needsClaim): few, where the copy holds every model. */
  private readonly toClaim = new Set<string>();
  /** History records waiting for their write to the fleet-wide list (see appendHistory). */
  private readonly recentQueue: HistoryRecord[] = [];
  /** Owned actors whose value holds timeline lines, by when the sweeper first saw them there (Date.now). */
  private readonly linesWaitingSince = new Map<string, number>();
  private settleTimer: NodeJS.Timeout | null = null;
  private watcher: { stop(): void } | null = null;
  /** The highest revision the watch brought, and when it last moved on. */
  private watchedRevision = 0;
  private watchProgressAt = performance.now();
  private watching: Promise<void> | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;
  /**
   * While the bucket is first read in the background (KvStoreOptions.loadInBackground): the bucket's last
   * revision at the start (values up to it come from the first read), the keys found absent meanwhile (read
   * and not there), the reads under way, and the promise of its end. Null once every value is read.
   */
  private loading: {
    readonly through: number;
    readonly absent: Set<string>;
    readonly reads: Map<string, Promise<void>>;
    readonly done: Promise<void>;
    /** Ends it early: the store closed before the read ended (what waits for it then finds it closed). */
    readonly end: () => void;
  } | null = null;

  private constructor(
    private readonly kv: KV,
    private readonly trainingKv: KV,
    private readonly timelineKv: KV,
    private readonly options: KvStoreOptions,
    private readonly logger: Logger,
  ) {}

  /**
   * Opens the store once it has read every current value of the actor bucket (so that `loadActors` sees
   * everything). The timeline bucket is read on demand only.
   */
  static async open(
    kv: KV,
    trainingKv: KV,
    timelineKv: KV,
    options: KvStoreOptions,
    logger: Logger,
  ): Promise<KvStore> {
    const store = new KvStore(kv, trainingKv, timelineKv, options, logger);
    const { loaded } = await store.startWatching();
    if (!options.loadInBackground) await loaded;
    let sweeping = false;
    store.sweeper = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      store.track(store.sweep().finally(() => (sweeping = false)));
    }, options.sweepEveryMs);
    store.sweeper.unref();
    store.track(store.whenLoaded().then(() => (store.closed ? undefined : store.reconcileTraining())));
    return store;
  }

  /**
   * Resolves once every value of the actor bucket has been read (at once, unless it is read in the
   * background: see KvStoreOptions.loadInBackground). Until then, what looks at every actor (the start-up
   * index, lists, counts) sees only part of them, and one actor's value may not be here yet (see prefetch).
   */
  whenLoaded(): Promise<void> {
    return this.loading?.done ?? Promise.resolve();
  }

  /**
   * While the bucket is read in the background: reads one actor's value from NATS, unless it is here
   * already (or known to be absent), so that what follows finds it in the copy; null when nothing is to be
   * read (then the copy answers for it, as it does once every value is read).
   */
  prefetch(kind: ActorKind, id: string): Promise<void> | null {
    return this.prefetchKey(actorKey(kind, id), `${kind} ${id}`);
  }

  /** prefetch, for any key of the bucket; `what` names it in the error. */
  private prefetchKey(key: string, what: string): Promise<void> | null {
    const loading = this.loading;
    if (loading === null || this.cache.has(key) || loading.absent.has(key)) return null;
    const under = loading.reads.get(key);
    if (under) return under;
    const read = (async () => {
      try {
        this.absorb(await this.kv.get(key), key);
      } catch (error) {
        throw new WardenError(
          'unavailable',
          `${what} could not be read from NATS now (${(error as Error).message})`,
          { retryable: true, cause: error },
        );
      } finally {
        loading.reads.delete(key);
      }
    })();
    loading.reads.set(key, read);
    return read;
  }

  /**
   * Whether a model's committed state already holds this input id (its machine remembers the recent ones):
   * a redelivered input was applied before the crash or restart that kept its acknowledgement from NATS.
   */
  hasApplied(modelId: string, inputId: string): boolean {
    const cached = this.cache.get(actorKey('model', modelId));
    const snapshot = (cached?.value as ActorValue | undefined)?.snapshot as
      { snapshot?: { context?: { recentInputIds?: unknown } } } | undefined;
    const ids = snapshot?.snapshot?.context?.recentInputIds;
    // As the model remembers it; or as it is, in a value another instance of an earlier build wrote
    // (model.v2, before long ids were digested), until the model is committed here.
    return Array.isArray(ids) && (ids.includes(rememberedId(inputId)) || ids.includes(inputId));
  }

  /**
   * Resolves once the model's committed state is not `rollingBack` (at once when it is not), or after
   * `maxWaitMs`. The intake waits for it before the model's next input: an input that arrives during a
   * rollback would be kept in the state and handed back later, and how many are kept would then depend on
   * timing; waiting keeps every run of the same stream identical.
   */
  whenSettled(modelId: string, maxWaitMs: number): Promise<void> | null {
    const key = actorKey('model', modelId);
    if (!this.rollingBack(key)) return null;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, maxWaitMs);
      const waiters = this.settledWaiters.get(key) ?? new Set();
      this.settledWaiters.set(key, waiters);
      waiters.add(done);
      function done(): void {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
    });
  }

  private rollingBack(key: string): boolean {
    const snapshot = (this.cache.get(key)?.value as ActorValue | undefined)?.snapshot as
      { snapshot?: { value?: unknown } } | undefined;
    return snapshot?.snapshot?.value === 'rollingBack';
  }

  /** Whether this instance writes the actor now (holds its lease): only then it runs its effects and timers. */
  owns(kind: ActorKind, key: string): boolean {
    return this.options.fence ? this.options.fence(kind, key).isHeld : true;
  }

  /** `owns`, for a key of the bucket (`model.<id>`, `training.<key>`); never for history keys. */
  private ownsKey(key: string): boolean {
    const parsed = parseKey(key);
    return parsed !== null && parsed.kind !== 'history' && this.owns(parsed.kind, parsed.id);
  }

  /** The stream sequence of the last input the model applied, as committed (0: none). */
  appliedPosition(modelId: string): number {
    const cached = this.cache.get(actorKey('model', modelId));
    return (cached?.value as ActorValue | undefined)?.position ?? 0;
  }

  /**
   * On taking a lease under a new epoch: claims every actor this instance knows of whose state needs the
   * runtime (see needsClaim), each with a fresh revision, so that the previous holder can write none of
   * them any more and the runtime here follows the latest state and runs what it calls for (a rollback
   * whose result could not be stored, a timer, kept inputs).
   */
  async claimAll(
    epoch: number,
    which: (kind: ActorKind, key: string) => boolean = () => true,
  ): Promise<void> {
    if (this.closed) return; // closed while the bucket was still being read (see whenLoaded)
    const actors: Array<{ readonly kind: ActorKind; readonly id: string }> = [];
    for (const key of this.toClaim) {
      const p = parseKey(key);
      if (p === null || p.kind === 'history' || !which(p.kind, p.id)) continue;
      actors.push({ kind: p.kind, id: p.id });
    }
    const failures: unknown[] = [];
    for (let i = 0; i < actors.length; i += 64) {
      await Promise.all(
        actors.slice(i, i + 64).map((p) =>
          this.claim(p.id, epoch, p.kind, true).catch((error: unknown) => {
            failures.push(error);
            // Not told to the runtime: what the actor's state calls for (a rollback, a timer, kept
            // inputs) may wait on this claim. Claimed again once NATS answers (as after a failed commit).
            this.reclaimLater(p.kind, p.id);
          }),
        ),
      );
    }
    if (failures.length > 0)
      this.logger.warn({ err: failures[0], failures: failures.length }, 'could not claim every actor');
  }

  /**
   * A commit that failed for a NATS reason (a timeout, NATS away) leaves the runtime on its last stored
   * state, with whatever that state calls for (a rollback result to store, say) possibly given up; so does a
   * claim that failed (the runtime was not told that it writes the actor again). Once NATS answers again,
   * the actor is claimed afresh, so that the runtime here picks up from it again.
   */
  private reclaimLater(kind: ActorKind, key: string): void {
    const id = actorKey(kind, key);
    const fenceOf = this.options.fence;
    if (this.reclaiming.has(id) || !fenceOf) return;
    this.reclaiming.add(id);
    this.track(
      (async () => {
        // Claimed a few times, some seconds apart: the runtime follows a claim only once the actor has no
        // commit of its own in flight (which, with NATS away, can take a while to fail).
        let claimed = 0;
        for (let attempt = 0; !this.closed && claimed < RECLAIMS && attempt < 60; attempt++) {
          await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** attempt, 5_000)));
          const fence = fenceOf(kind, key);
          if (!fence.valid()) {
            if (!fence.isHeld) break; // another instance writes it now (see owns)
            continue;
          }
          try {
            await this.claim(key, fence.epoch, kind, true);
            claimed++;
          } catch (error) {
            this.options.onTransientFailure?.('reclaim', error);
          }
        }
      })().finally(() => this.reclaiming.delete(id)),
    );
  }

  /**
   * Before this instance applies the first input of a model under a new lease epoch: reads the model's
   * latest committed state from NATS (the runtime follows it) and writes it back marked with the epoch, a
   * revision-checked write after which NATS refuses every write the previous holder still attempts.
   */
  async claim(modelId: string, epoch: number, kind: ActorKind = 'model', always = false): Promise<void> {
    const key = actorKey(kind, modelId);
    await this.serial(key, async () => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const entry = await this.kv.get(key);
        this.absorb(entry, key);
        const cached = this.cache.get(key);
        if (!entry || entryText(entry) === null || !cached || !('outbox' in cached.value)) return;
        const value = cached.value;
        if ((value.epoch ?? 0) > epoch) {
          throw new WardenError('unavailable', `model ${modelId} was claimed by a newer lease epoch`, {
            retryable: true,
          });
        }
        if (value.epoch === epoch && !always) return;
        const next: ActorValue = { ...value, epoch };
        try {
          const revision = await this.write(key, JSON.stringify(next), cached.revision);
          this.store(key, revision, next);
          // Told to the runtime here even when it reads the same (the same epoch, the lease taken back after
          // a hiccup): it writes the actor again, and runs what its state calls for (its timer, which may
          // have come due while the lease was not held, its rollback).
          this.tell(kind, modelId, key);
          if (this.hasPublished(next) || (next.timeline?.length ?? 0) > 0)
            this.track(this.serial(key, () => this.settle(key)));
          return;
        } catch (error) {
          if (!isWrongRevision(error)) throw error;
        }
      }
      throw new WardenError('unavailable', `could not claim model ${modelId}: it kept changing`, {
        retryable: true,
      });
    });
  }

  async loadActors(kind: ActorKind): Promise<ActorRecord[]> {
    const records: ActorRecord[] = [];
    for (const [key, cached] of this.cache) {
      const parsed = parseKey(key);
      if (parsed?.kind === kind) records.push(recordOf(kind, parsed.id, cached));
    }
    return records;
  }

  // ---------------------------------------------------------------------------------------------
  // Lazy start-up and passivation: every committed value is in the cache (the watch keeps it current), so
  // the runtime can read any actor synchronously, load actors on demand and passivate idle ones.

  peekActor(kind: ActorKind, key: string): ActorRecord | null {
    const cached = this.cache.get(actorKey(kind, key));
    return cached && 'snapshot' in cached.value ? recordOf(kind, key, cached) : null;
  }

  *peekActors(kind: ActorKind): Iterable<ActorRecord> {
    for (const [key, cached] of this.cache) {
      if (!key.startsWith(`${kind}.`) || !('snapshot' in cached.value)) continue;
      yield recordOf(kind, key.slice(kind.length + 1), cached);
    }
  }

  /**
   * Never null: a value written before the index counts as needing attention (see ActorValue). Once every
   * value is read (see whenLoaded).
   */
  async startIndex(): Promise<IndexEntry[]> {
    await this.whenLoaded();
    const entries: IndexEntry[] = [];
    for (const kind of ['model', 'training'] as const) {
      for (const record of this.peekActors(kind)) {
        const deadline = record.deadline ?? null;
        const attention = record.attention ?? true;
        if (deadline !== null || attention) entries.push({ kind, key: record.key, deadline, attention });
      }
    }
    return entries;
  }

  /**
   * The index travels in each actor's value, written with each commit. Changed without a commit (the
   * registry write of a promotion done: the next start need not load the model), it is written here as
   * bookkeeping on top of the value, by the instance that writes the actor; a write that finds the value
   * changed meanwhile is dropped (that change carried the runtime's index).
   */
  async saveIndex(entries: readonly IndexEntry[]): Promise<void> {
    await Promise.all(
      entries.map((entry) => {
        const key = actorKey(entry.kind, entry.key);
        if (!this.owns(entry.kind, entry.key)) return undefined;
        return this.serial(key, async () => {
          const cached = this.cache.get(key);
          if (!cached || !('snapshot' in cached.value)) return;
          // Read from the actor before a commit that has landed since (this write waited behind the key's
          // other writes): that commit wrote its own index. Written on top of it, a model's detection
          // (rolling back, attention) was marked as needing nothing, and after a take-over nobody ran its
          // rollback (partitions-outage.test.ts, a seed in 3 of 9 runs with the lease's timing changed).
          if (entry.revision !== undefined && !snapshotSince(cached, entry.revision)) return;
          const value = cached.value;
          if ((value.deadline ?? null) === entry.deadline && value.attention === entry.attention) return;
          const next: ActorValue = { ...value, deadline: entry.deadline, attention: entry.attention };
          try {
            this.store(key, await this.write(key, JSON.stringify(next), cached.revision), next);
          } catch (error) {
            if (!isWrongRevision(error)) throw error;
          }
        });
      }),
    );
  }

  countStates(kind: ActorKind): Map<string, number> {
    const counts = new Map<string, number>();
    for (const record of this.peekActors(kind)) {
      const state = (record.snapshot as { snapshot?: { value?: unknown } } | null)?.snapshot?.value;
      if (state === undefined) continue;
      counts.set(String(state), (counts.get(String(state)) ?? 0) + 1);
    }
    return counts;
  }

  /** Reads NATS (not the cache): the runtime calls this after a conflict, to get what another instance wrote. */
  async loadActor(kind: ActorKind, key: string): Promise<ActorRecord | null> {
    const entry = await this.kv.get(actorKey(kind, key));
    this.absorb(entry, actorKey(kind, key));
    const cached = this.cache.get(actorKey(kind, key));
    return cached ? recordOf(kind, key, cached) : null;
  }

  async commit(batch: CommitBatch): Promise<number[]> {
    if (batch.actors.length !== 1) {
      throw new WardenError(
        'internal',
        `the NATS store commits one actor at a time (commitEach), received ${batch.actors.length}`,
      );
    }
    const [result] = await this.commitEach([batch]);
    if (!result!.ok) throw result!.error;
    return [result!.revision];
  }

  commitEach(parts: readonly CommitBatch[]): Promise<PartResult[]> {
    return Promise.all(parts.map((part) => this.commitPart(part)));
  }

  /** Unpublished entries not handed to this instance's outbox yet (its own commits' are handed with them). */
  async pendingOutbox(limit: number): Promise<OutboxEntry[]> {
    const pending: OutboxEntry[] = [];
    for (const key of this.withEntries) {
      const value = this.cache.get(key)?.value as ActorValue | undefined;
      for (const entry of value?.outbox ?? [])
        if (!this.published.has(entry.id) && !this.mine.has(entry.id)) pending.push(entry);
    }
    const handed = pending.slice(0, limit);
    for (const entry of handed) this.mine.add(entry.id);
    return handed;
  }

  /**
   * Never rejects: the ids are remembered at once (nothing is published twice from here), and clearing them
   * from the actors' values is bookkeeping done a little later (SETTLE_DELAY_MS), in the background: the
   * actor's next commit usually clears them itself meanwhile, and a write of its own racing that commit
   * would make the commit conflict (a reload and a second write on the path of the next input). A timeout
   * only postpones it (the sweeper and the next write of the actor carry it out).
   */
  async markPublished(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.remember(id);
    for (const id of ids) {
      const key = this.outboxEntries.get(id)?.key;
      if (key !== undefined) this.settleSoon(key);
    }
  }

  /** Marks an actor's value for the bookkeeping of settle, done with others a little later. */
  private settleSoon(key: string): void {
    this.toSettle.add(key);
    if (this.settleTimer !== null || this.closed) return;
    this.settleTimer = setTimeout(() => this.settleNow(), SETTLE_DELAY_MS);
  }

  /** Clears the published entries of the actors marked so far (see markPublished). */
  private settleNow(): void {
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.settleTimer = null;
    const keys = [...this.toSettle];
    this.toSettle.clear();
    for (const key of keys) {
      this.track(
        this.serial(key, () => this.settle(key)).catch((error: unknown) => {
          this.options.onTransientFailure?.('outbox_settle', error);
          this.logger.warn({ err: error, key }, 'could not clear published events yet; will again');
        }),
      );
    }
  }

  async history(query: { modelId?: string | undefined; limit: number }): Promise<HistoryRecord[]> {
    const modelId = query.modelId;
    // Read before the timeline bucket's records (as timeline() does): a record moved there in between is
    // then found there, not missed. Oldest first: those that builds before the timeline bucket held it wrote
    // to the actor bucket's history keys, then the timeline bucket's, then those not yet moved there.
    const legacy: HistoryRecord[][] = [];
    const pending: HistoryRecord[][] = [];
    // The fleet's: only the keys that can hold records (see withEntries), not every cached value.
    const keys =
      modelId === undefined
        ? [...this.legacyHistory, ...this.withEntries]
        : [historyKey(modelId), actorKey('model', modelId)];
    // One model's records need only its two keys, read now if the bucket's first read has not come to them.
    if (modelId !== undefined) {
      const reads = keys.map((key) => this.prefetchKey(key, `the rollback history of ${modelId}`));
      await Promise.all(reads);
    }
    const cached = keys.flatMap((key) => {
      const entry = this.cache.get(key);
      return entry ? [[key, entry] as const] : [];
    });
    for (const [key, entry] of cached) {
      const kind = parseKey(key)?.kind;
      if (kind === 'history') legacy.push((entry.value as HistoryValue).records);
      else if (kind === 'model') pending.push((entry.value as ActorValue).history);
    }
    let moved: HistoryValue;
    try {
      moved = await this.readRecords(modelId === undefined ? RECENT_KEY : historyKey(modelId));
    } catch (error) {
      throw new WardenError(
        'unavailable',
        `the rollback history could not be read from NATS now (${(error as Error).message})`,
        { retryable: true },
      );
    }
    const seen = new Set<string>();
    const records: Array<{ record: HistoryRecord; order: number }> = [];
    for (const record of [...legacy.flat(), ...moved.records, ...pending.flat()]) {
      const id = eventIdOf(record);
      if (seen.has(id)) continue;
      seen.add(id);
      records.push({ record, order: records.length });
    }
    records.sort((a, b) => b.record.at - a.record.at || b.order - a.order);
    return records.slice(0, query.limit).map((r) => r.record);
  }

  /**
   * The actor's timeline key, and the lines of its value not moved there yet. The value is read first: a
   * move that comes in between is then found in the key, and no line is shown twice or missed.
   */
  async timeline(kind: ActorKind, key: string, limit: number): Promise<TimelineEntry[]> {
    const id = actorKey(kind, key);
    const value = this.cache.get(id)?.value as ActorValue | undefined;
    let moved: TimelineValue;
    try {
      moved = await this.readTimeline(id);
    } catch (error) {
      throw new WardenError(
        'unavailable',
        `the timeline of ${kind} ${key} could not be read from NATS now (${(error as Error).message})`,
        { retryable: true },
      );
    }
    // The newest TIMELINE_KEEP at most, as the key keeps them: the same lines before and after a move.
    return [...moved.lines, ...linesAfter(value, moved.through)]
      .slice(-Math.min(limit, TIMELINE_KEEP))
      .reverse();
  }

  private async readTimeline(id: string): Promise<TimelineValue & { revision: number | null }> {
    const entry = await this.timelineKv.get(id);
    const text = entryText(entry);
    if (text === null) return { lines: [], through: 0, revision: entry?.revision ?? null };
    return { ...(JSON.parse(text) as TimelineValue), revision: entry!.revision };
  }

  /**
   * Appends to an actor's timeline key the lines of its value that are not there yet, and records the number
   * of the last: moving the same lines twice (a crash between this and the write that clears them from the
   * value) adds nothing.
   */
  private async moveTimeline(id: string, value: ActorValue): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.readTimeline(id);
      const fresh = linesAfter(value, current.through);
      if (fresh.length === 0) return;
      const next: TimelineValue = {
        lines: [...current.lines, ...fresh].slice(-TIMELINE_KEEP),
        through: lastLineOf(value),
      };
      try {
        const json = JSON.stringify(next);
        if (current.revision === null) await this.timelineKv.create(id, json);
        else await this.timelineKv.update(id, json, current.revision);
        return;
      } catch (error) {
        if (!isWrongRevision(error)) throw error;
      }
    }
    throw new Error(`could not move the timeline of ${id}: it kept changing`);
  }

  watch(listener: (record: ActorRecord) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.loading?.end();
    if (this.sweeper) clearInterval(this.sweeper);
    // Whoever waits for a model's rollback to settle stops waiting: nothing settles here any more.
    for (const waiters of [...this.settledWaiters.values()]) for (const done of [...waiters]) done();
    this.settleNow();
    // Background bookkeeping gets a bounded time (NATS may be down): what it did not finish is still
    // stored (unpublished entries stay in the actors' values) and is done by the next start.
    const deadline = performance.now() + CLOSE_DEADLINE_MS;
    while (this.tasks.size > 0 && performance.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.tasks]),
        new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - performance.now())))),
      ]);
      clearTimeout(timer);
    }
    this.watcher?.stop();
    await this.watching;
    await this.options.afterClose?.();
  }

  // ---------------------------------------------------------------------------------------------
  // Commits

  private async commitPart(part: CommitBatch): Promise<PartResult> {
    const actor = part.actors[0];
    if (!actor || part.actors.length !== 1) {
      return { ok: false, error: new WardenError('internal', 'a commit part must hold exactly one actor') };
    }
    const key = actorKey(actor.kind, actor.key);
    const cached = this.cache.get(key);
    const previous = cached && 'outbox' in cached.value ? cached.value : null;
    // Writes that only cleared published entries kept the snapshot the runtime read: write on top of them.
    const expected = snapshotSince(cached, actor.revision) ? cached!.revision : actor.revision;
    // Single writer: only the lease holder writes actor state.
    const fence = this.options.fence?.(actor.kind, actor.key);
    if (fence && !fence.isHeld) {
      // Another instance takes this actor's inputs (this one is a standby, or holds other partitions): no
      // attempt here can succeed, so the input is refused at once, to be sent where it is taken. Only
      // inputs come this far: timers and effects run where the actor is held.
      return {
        ok: false,
        error: new WardenError(
          'unavailable',
          `${actor.kind} ${actor.key}: this instance does not take its inputs now (it is a standby, or another instance holds its partition): publish it on NATS, or send it again to the instance that does`,
          { retryable: true },
        ),
      };
    }
    if (fence && (!fence.valid() || (previous?.epoch ?? 0) > fence.epoch)) {
      // Held but not renewed in time, or a newer holder wrote since: refused as a conflict, so that the
      // runtime re-reads what the holder committed (which also ends a timer or effect the holder has already
      // done). Once this instance may act again (cut off for a moment), it takes this actor up again.
      this.reclaimLater(actor.kind, actor.key);
      return {
        ok: false,
        error: new ConflictError(`${actor.kind} ${actor.key}: this instance does not hold the input lease`),
      };
    }
    // An actor's events are published in the order of its commits, whichever instance made them. Events an
    // earlier commit made elsewhere that were never published (that instance lost NATS, then the actor)
    // would otherwise go out after this commit's, once the sweeper finds them stranded: a training config
    // would take a later rollback's pause before an earlier one's. They stay stored with the actor, and are
    // handed to this instance's outbox with the commit's result, ahead of its own events. Publishing them
    // here, before the write, would make every later commit of the actor wait on the event stream: a stream
    // that refuses them (full, with discard new) would stop the actor altogether, its inputs and its
    // rollback results retried in a loop, where only its events need to wait.
    const carried = (previous?.outbox ?? []).filter((e) => !this.published.has(e.id) && !this.mine.has(e.id));
    const epoch = fence ? fence.epoch : previous?.epoch;
    const value: ActorValue = {
      ...(actor.position !== undefined ? { position: actor.position } : {}),
      ...(epoch !== undefined ? { epoch } : {}),
      ...(actor.deadline !== undefined ? { deadline: actor.deadline } : {}),
      ...(actor.attention !== undefined ? { attention: actor.attention } : {}),
      snapshot: actor.snapshot,
      outbox: [...(previous?.outbox ?? []).filter((e) => !this.published.has(e.id)), ...part.outbox],
      // History records stay until settle() has moved them to the history key (dropping them here, once
      // their event is published, would lose them when a commit comes before that move).
      history: [...(previous?.history ?? []), ...part.history],
      // Moved to the timeline bucket soon after (settle); at most TIMELINE_KEEP wait here meanwhile.
      timeline: [...(previous?.timeline ?? []), ...(part.timeline ?? [])].slice(-TIMELINE_KEEP),
    };
    const timelineSeq = lastLineOf(previous) + (part.timeline?.length ?? 0);
    if (timelineSeq > 0) value.timelineSeq = timelineSeq;
    const json = JSON.stringify(value);
    try {
      const revision = await this.write(key, json, expected);
      for (const entry of carried) this.mine.add(entry.id);
      for (const entry of part.outbox) this.mine.add(entry.id);
      this.store(key, revision, value, true);
      if (value.timeline!.length >= TIMELINE_MOVE_LINES) this.settleSoon(key);
      if (actor.kind === 'training') this.track(this.project(actor.key));
      return carried.length > 0 ? { ok: true, revision, carried } : { ok: true, revision };
    } catch (error) {
      if (isWrongRevision(error)) {
        return {
          ok: false,
          error: new ConflictError(`${actor.kind} ${actor.key} changed since revision ${actor.revision}`),
        };
      }
      this.options.onTransientFailure?.('commit', error);
      this.reclaimLater(actor.kind, actor.key);
      return { ok: false, error, outcomeUnknown: true };
    }
  }

  /**
   * Records a value this instance wrote or read; says whether the snapshot changed. `committed`: the runtime
   * holds exactly this revision now.
   */
  private store(key: string, revision: number, value: ActorValue | HistoryValue, committed = false): boolean {
    const before = this.cache.get(key);
    // An answer that comes after the watch brought a newer write of the key (another writer's) is old news.
    if (before && revision < before.revision) return false;
    // Bookkeeping written here (published events cleared) keeps the very snapshot it was made from.
    const kept = before !== undefined && !committed && sameIdentity(before.value, value);
    // What this instance committed itself, or a key seen for the first time, needs no comparison now (it
    // changed); it is serialized when another write of the key comes to be compared with it.
    const snapshotJson = committed || !before ? null : kept ? before.snapshotJson : identityOf(value);
    const changed =
      committed || !before || (!kept && (before.snapshotJson ?? identityOf(before.value)) !== snapshotJson);
    const snapshotRevision = changed || committed ? revision : before.snapshotRevision;
    this.cache.set(key, { revision, value, snapshotJson, snapshotRevision });
    this.indexKey(key, value);
    const waiters = this.settledWaiters.get(key);
    if (waiters && !this.rollingBack(key)) {
      this.settledWaiters.delete(key);
      for (const done of waiters) done();
    }
    this.indexOutbox(key, before?.value, value);
    return changed;
  }

  /** Keeps the sweep's sets (see withEntries) in line with the key's value (undefined: gone). */
  private indexKey(key: string, value: ActorValue | HistoryValue | undefined): void {
    const keep = (set: Set<string>, yes: boolean) => (yes ? set.add(key) : set.delete(key));
    const actor = value !== undefined && 'outbox' in value ? value : undefined;
    keep(this.withEntries, actor !== undefined && (actor.outbox.length > 0 || actor.history.length > 0));
    const lines = (actor?.timeline?.length ?? 0) > 0;
    keep(this.withLines, lines);
    if (!lines) this.linesWaitingSince.delete(key); // moved, by whichever instance: waiting no more
    keep(this.legacyHistory, value !== undefined && actor === undefined);
    keep(this.trainingKeys, actor !== undefined && key.startsWith('training.'));
    const kind = parseKey(key)?.kind;
    keep(this.toClaim, actor !== undefined && kind !== undefined && needsClaim(kind, actor));
  }

  /** Keeps `outboxEntries` in step with one cached value, replaced (or removed: `value` undefined). */
  private indexOutbox(
    key: string,
    before: ActorValue | HistoryValue | undefined,
    value: ActorValue | HistoryValue | undefined,
  ): void {
    const current = value && 'outbox' in value ? value.outbox : [];
    if (before && 'outbox' in before && before.outbox.length > 0) {
      const kept = new Set(current.map((e) => e.id));
      for (const entry of before.outbox) {
        if (!kept.has(entry.id) && this.outboxEntries.get(entry.id)?.key === key)
          this.outboxEntries.delete(entry.id);
      }
    }
    if (current.length === 0) return;
    const now = Date.now();
    for (const entry of current) {
      if (this.outboxEntries.get(entry.id)?.key !== key)
        this.outboxEntries.set(entry.id, { key, since: now });
    }
  }

  /**
   * A revision-checked write to the actor bucket (`expected` 0: the key must not exist yet). The caller
   * records the value it wrote once this resolves; until then, the watch's entry for it is held back.
   */
  private async write(key: string, json: string, expected: number): Promise<number> {
    const own = { json, echo: null as KvEntry | null };
    const writes = this.ownWrites.get(key);
    if (writes) writes.push(own);
    else this.ownWrites.set(key, [own]);
    try {
      const update = this.options.update;
      if (update) return await update(key, json, expected);
      return expected === 0 ? await this.kv.create(key, json) : await this.kv.update(key, json, expected);
    } catch (error) {
      // Failed as far as the answer says (lost, say); but if the watch brought it, it landed: follow it.
      this.forgetOwnWrite(key, own);
      if (own.echo) this.absorb(own.echo, key);
      throw error;
    } finally {
      this.forgetOwnWrite(key, own);
    }
  }

  private forgetOwnWrite(key: string, own: { json: string; echo: KvEntry | null }): void {
    const writes = this.ownWrites.get(key);
    const at = writes?.indexOf(own) ?? -1;
    if (at < 0) return;
    writes!.splice(at, 1);
    if (writes!.length === 0) this.ownWrites.delete(key);
  }

  /**
   * Takes in an entry read from NATS (the watch, `watched`, or a fresh get); tells the listeners of a newer
   * snapshot.
   */
  private absorb(entry: KvEntry | null, key = entry?.key, watched = false): void {
    if (key === undefined) return;
    const parsed = parseKey(key);
    if (!parsed) return;
    const cached = this.cache.get(key);
    // This instance's own writes come back through the watch: known already, not decoded again.
    if (cached && entry && entry.revision <= cached.revision) return;
    const text = entryText(entry);
    // Or the watch's copy of one whose answer is still on its way: its writer records it when that comes.
    const own =
      watched && text !== null ? this.ownWrites.get(key)?.find((w) => !w.echo && w.json === text) : undefined;
    if (own) {
      own.echo = entry;
      return;
    }
    if (text === null) {
      // Read for itself while the bucket is first read (a claim, a prefetch): known to be absent now.
      if (!watched && !cached && this.loading !== null) this.loading.absent.add(key);
      if (entry && (!cached || entry.revision > cached.revision)) {
        this.cache.delete(key);
        this.indexKey(key, undefined);
        this.indexOutbox(key, cached?.value, undefined);
      }
      return;
    }
    let value: ActorValue | HistoryValue;
    try {
      value = JSON.parse(text) as ActorValue | HistoryValue;
    } catch (error) {
      this.logger.error({ err: error, key }, 'ignoring a value that is not JSON in the actor bucket');
      return;
    }
    const changed = this.store(key, entry!.revision, value);
    if (parsed.kind === 'history') return;
    const actor = value as ActorValue;
    // Values the first read brings in the background were committed before the start: the start-up index
    // (read once they all are) says what of them the runtime needs, as it does when they are read first.
    const fromFirstRead = watched && this.loading !== null && entry!.revision <= this.loading.through;
    if (changed && !fromFirstRead) this.tell(parsed.kind, parsed.id, key);
    // Someone carried over entries already published: clear them.
    if (this.hasPublished(actor)) this.track(this.serial(key, () => this.settle(key)));
  }

  /** Tells the listeners (the runtime) of an actor's cached record. */
  private tell(kind: ActorKind, id: string, key: string): void {
    const cached = this.cache.get(key);
    if (!cached || !('snapshot' in cached.value)) return;
    const record = recordOf(kind, id, cached);
    for (const listener of this.listeners) listener(record);
  }

  // ---------------------------------------------------------------------------------------------
  // Moving published entries on

  /**
   * Clears an actor's published outbox entries, moving their history records to the history key first, and
   * moves its timeline lines to its timeline key when they are due (see timelineDue): most commits publish
   * an event, and moving their one line each time cost two operations more than the clearing write.
   */
  private async settle(key: string): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const cached = this.cache.get(key);
      if (!cached || !('outbox' in cached.value)) return;
      const value = cached.value;
      const movingLines = this.timelineDue(key, value, Date.now());
      if (!this.hasPublished(value) && !movingLines) return;
      const moving = value.history.filter((h) => this.published.has(eventIdOf(h)));
      const modelId = parseKey(key)!.id;
      if (moving.length > 0) await this.appendHistory(modelId, moving);
      if (movingLines) await this.moveTimeline(key, value);
      // Only the records moved leave the value: an event published during the move above has its record
      // still to move (the next pass does it). Lines committed meanwhile make the write below conflict.
      const moved = new Set(moving);
      const timelineSeq = lastLineOf(value);
      const next: ActorValue = {
        ...value,
        outbox: value.outbox.filter((e) => !this.published.has(e.id)),
        history: value.history.filter((h) => !moved.has(h)),
        ...(movingLines ? { timeline: [], ...(timelineSeq > 0 ? { timelineSeq } : {}) } : {}),
      };
      try {
        const revision = await this.write(key, JSON.stringify(next), cached.revision);
        this.store(key, revision, next);
        if (!this.hasPublished(next)) return;
      } catch (error) {
        if (!isWrongRevision(error)) throw error;
        this.absorb(await this.kv.get(key), key);
      }
    }
  }

  /**
   * Whether the timeline lines waiting in an actor's value are due to move (see TIMELINE_MOVE_LINES): only
   * those of an actor this instance writes. In a quiet actor's value a line waits `timelineMoveAfterMs`
   * after the sweep that first sees it, so at most one sweep more.
   */
  private timelineDue(key: string, value: ActorValue, now: number): boolean {
    const waiting = value.timeline?.length ?? 0;
    if (waiting === 0 || !this.ownsKey(key)) {
      this.linesWaitingSince.delete(key);
      return false;
    }
    const since = this.linesWaitingSince.get(key) ?? now;
    this.linesWaitingSince.set(key, since);
    return waiting >= TIMELINE_MOVE_LINES || now - since >= this.options.timelineMoveAfterMs;
  }

  /**
   * Adds published records to the model's history key and to the fleet-wide list, both in the timeline
   * bucket, each record once (a move made again after a crash adds nothing); settle() then clears them from
   * the model's value.
   */
  private async appendHistory(modelId: string, records: HistoryRecord[]): Promise<void> {
    await this.appendRecords(historyKey(modelId), records, this.options.historyLimit);
    await this.appendRecent(records);
  }

  /** Adds records to the fleet-wide list (see appendHistory). */
  private async appendRecent(records: HistoryRecord[]): Promise<void> {
    this.recentQueue.push(...records);
    // One write of the shared list at a time from here, with whatever records wait by then: the settles of
    // many models at once (a fleet-wide regression) would otherwise each retry against the others.
    await this.serial(`timeline:${RECENT_KEY}`, async () => {
      const batch = this.recentQueue.splice(0);
      if (batch.length === 0) return; // an earlier turn took them
      try {
        await this.appendRecords(RECENT_KEY, batch, RECENT_KEEP);
      } catch (error) {
        this.recentQueue.unshift(...batch);
        throw error;
      }
    });
  }

  /** Appends to a history key of the timeline bucket the records it does not hold, keeping the newest `keep`. */
  private async appendRecords(key: string, records: HistoryRecord[], keep: number): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.readRecords(key);
      const known = new Set(current.records.map(eventIdOf));
      // Each once, also within `records`: a batch of the fleet-wide list may hold a record twice (put back
      // after a failed write, and brought again by the settle that tries the move again).
      const fresh: HistoryRecord[] = [];
      for (const record of records) {
        const id = eventIdOf(record);
        if (known.has(id)) continue;
        known.add(id);
        fresh.push(record);
      }
      if (fresh.length === 0) return;
      // Oldest first, by time: the fleet-wide list takes the records of many models, moved in any order.
      const merged = [...current.records, ...fresh].sort((a, b) => a.at - b.at).slice(-keep);
      const json = JSON.stringify({
        records: newestWithin(merged, HISTORY_MAX_BYTES),
      } satisfies HistoryValue);
      try {
        if (current.revision === null) await this.timelineKv.create(key, json);
        else await this.timelineKv.update(key, json, current.revision);
        return;
      } catch (error) {
        if (!isWrongRevision(error)) throw error;
      }
    }
    throw new Error(`could not append to ${key} in the timeline bucket: it kept changing`);
  }

  private async readRecords(key: string): Promise<HistoryValue & { revision: number | null }> {
    const entry = await this.timelineKv.get(key);
    const text = entryText(entry);
    if (text === null) return { records: [], revision: entry?.revision ?? null };
    return { ...(JSON.parse(text) as HistoryValue), revision: entry!.revision };
  }

  /**
   * Outbox entries that stayed unpublished too long (their instance crashed, or a commit that looked failed
   * had in fact been written): publish them here. JetStream drops the duplicate if they were published after all.
   */
  private async sweep(): Promise<void> {
    const now = Date.now();
    const stranded = new Set<string>();
    for (const key of [...this.withEntries, ...this.withLines]) {
      const cached = this.cache.get(key);
      if (!cached || !('outbox' in cached.value)) continue;
      // Published entries or history records a settle did not clear (it failed, or a commit came first),
      // and timeline lines due to move (a quiet actor's, or those a move left behind, NATS away then): a
      // model that commits nothing more would keep them in its value for good.
      if (this.hasPublished(cached.value) || this.timelineDue(key, cached.value, now)) this.toSettle.add(key);
      for (const entry of cached.value.outbox) {
        if (this.published.has(entry.id)) continue;
        if (now - (this.outboxEntries.get(entry.id)?.since ?? now) < this.options.strandedAfterMs) continue;
        stranded.add(key);
      }
    }
    if (this.toSettle.size > 0 && this.settleTimer === null && !this.closed) this.settleNow();
    // While the stream refuses events, every actor holding some fails here at each sweep: one line says so.
    let failed: { count: number; key: string; error: unknown } | null = null;
    for (const key of stranded) {
      const value = this.cache.get(key)?.value as ActorValue | undefined;
      if (!value) continue;
      try {
        for (const entry of value.outbox) {
          if (this.published.has(entry.id)) continue;
          await this.options.publish(entry);
          this.remember(entry.id);
        }
        this.logger.warn({ key }, 'published events another commit left behind');
        await this.serial(key, () => this.settle(key));
      } catch (error) {
        failed ??= { count: 0, key, error };
        failed.count++;
      }
    }
    if (failed)
      this.logger.warn(
        { err: failed.error, actors: failed.count, first: failed.key },
        `could not publish the stranded events of ${failed.count} actor(s); will try again`,
      );
    await this.reconcileTraining();
    await this.moveLegacyHistory().catch((error: unknown) =>
      this.options.onTransientFailure?.('history_move', error),
    );
    await this.checkWatch().catch((error: unknown) =>
      this.options.onTransientFailure?.('watch_check', error),
    );
  }

  /**
   * Moves history keys that earlier builds wrote in the actor bucket to the timeline bucket (the model's key
   * and the fleet-wide list), then deletes them, if unchanged since: every instance then stops holding them.
   * Only the instance that writes the model moves its key. Killed in between, the next sweep copies them
   * again (each record once) and deletes them; an earlier build still appending to one (a rolling upgrade)
   * makes the delete fail, and the next sweep moves what it added.
   */
  private async moveLegacyHistory(): Promise<void> {
    const legacy: Array<{ key: string; modelId: string; revision: number; records: HistoryRecord[] }> = [];
    for (const key of this.legacyHistory) {
      const cached = this.cache.get(key);
      const parsed = parseKey(key);
      if (!cached || parsed?.kind !== 'history' || !this.owns('model', parsed.id)) continue;
      legacy.push({ key, modelId: parsed.id, revision: cached.revision, ...(cached.value as HistoryValue) });
      if (legacy.length >= LEGACY_HISTORY_MOVES) break;
    }
    if (legacy.length === 0) return;
    for (const { modelId, records } of legacy)
      await this.appendRecords(historyKey(modelId), records, this.options.historyLimit);
    // One write of the fleet-wide list for the whole sweep's keys (up to 512 KiB rewritten each time).
    await this.appendRecent(legacy.flatMap((l) => l.records));
    for (const { key, revision } of legacy) {
      if (this.closed) return;
      try {
        await this.kv.delete(key, { previousSeq: revision });
      } catch (error) {
        if (!isWrongRevision(error)) throw error;
      }
    }
  }

  /** Whether an actor value holds published outbox entries, or history records of published events. */
  private hasPublished(value: ActorValue): boolean {
    return (
      value.outbox.some((e) => this.published.has(e.id)) ||
      value.history.some((h) => this.published.has(eventIdOf(h)))
    );
  }

  private remember(id: string): void {
    this.mine.delete(id);
    this.published.set(id, true);
    if (this.published.size > PUBLISHED_MEMORY) this.published.delete(this.published.keys().next().value!);
  }

  // ---------------------------------------------------------------------------------------------
  // What trainers read

  /** Writes the training entry from the newest actor value; converges when several instances write. */
  private project(configKey: string): Promise<void> {
    return this.serial(`training:${configKey}`, async () => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const cached = this.cache.get(actorKey('training', configKey));
        const entry = cached ? trainingEntryFrom(configKey, (cached.value as ActorValue).snapshot) : null;
        if (!entry) return;
        const json = JSON.stringify(entry);
        if (!this.projected.has(configKey)) {
          const stored = await this.trainingKv.get(configKey);
          this.projected.set(
            configKey,
            stored ? { revision: stored.revision, json: entryText(stored) ?? '' } : null,
          );
        }
        const known = this.projected.get(configKey) ?? null;
        if (known?.json === json) return;
        try {
          const revision = known
            ? await this.trainingKv.update(configKey, json, known.revision)
            : await this.trainingKv.create(configKey, json);
          this.projected.set(configKey, { revision, json });
          return;
        } catch (error) {
          if (!isWrongRevision(error)) throw error;
          // Another instance wrote it: read both again and write the newest state.
          this.projected.delete(configKey);
          this.absorb(await this.kv.get(actorKey('training', configKey)), actorKey('training', configKey));
        }
      }
    });
  }

  private async reconcileTraining(): Promise<void> {
    const configKeys = [...this.trainingKeys].map((key) => key.slice('training.'.length));
    await Promise.all(
      configKeys.map((configKey) =>
        this.project(configKey).catch((error: unknown) =>
          this.logger.warn({ err: error, configKey }, 'could not update the training entry'),
        ),
      ),
    );
  }

  // ---------------------------------------------------------------------------------------------

  /** Starts following the bucket; `loaded` resolves once every value stored now is read. */
  private async startWatching(): Promise<{ loaded: Promise<void> }> {
    const status = await this.kv.status();
    const lastSeq = status.streamInfo.state.last_seq;
    let resolveReady!: () => void;
    const ready = new Promise<void>((resolve) => (resolveReady = resolve));
    if (status.values === 0) resolveReady();
    this.loading = { through: lastSeq, absent: new Set(), reads: new Map(), done: ready, end: resolveReady };
    void ready.then(() => (this.loading = null));
    // An empty bucket has nothing to read first: followed over the store's own connection at once.
    const firstRead = status.values > 0 ? (this.options.firstRead ?? null) : null;
    if (firstRead === null) this.options.firstRead?.done();
    // Read through once the watch has nothing pending (the count the server sends with each entry). Not at
    // the start's last revision: a value rewritten during the read loses the revision the read would have
    // found, and its new one comes after that (three instances starting over 200,000 models each said they
    // had read them all with 24-28 missing; with this, none). Not exact either: nats-server 2.9.10 was seen
    // to count down from what it had to send when the watch began, so a value rewritten during the read can
    // still come a moment after the read is said done (a test of it failed about one run in two under load).
    // A look at the bucket's last revision is not exact either (a rewrite after the look takes away a
    // revision not yet sent): the sweep ends the read that way only once the bucket has been quiet a while,
    // so that a count that never says 0 does not leave the read unfinished (checkWatch).
    this.watching = this.watchLoop(firstRead, (entry) => {
      if (entry.delta === 0) resolveReady();
    });
    return { loaded: ready };
  }

  /** Follows the bucket; if the watch ever ends (NATS restarted), resumes after the last revision seen. */
  private async watchLoop(
    firstRead: KvStoreOptions['firstRead'] | null,
    onEntry: (entry: KvEntry) => void,
  ): Promise<void> {
    let highest = 0;
    const progress = (revision: number) => {
      if (revision > this.watchedRevision) this.watchProgressAt = performance.now();
      this.watchedRevision = Math.max(this.watchedRevision, revision);
    };
    while (!this.closed) {
      try {
        const source = firstRead?.kv ?? this.kv;
        const watcher = await source.watch(
          highest > 0 ? { key: '>', resumeFromRevision: highest + 1 } : { key: '>' },
        );
        this.watcher = watcher;
        if (this.closed) watcher.stop();
        for await (const entry of watcher) {
          highest = Math.max(highest, entry.revision);
          progress(entry.revision);
          this.absorb(entry, entry.key, true);
          onEntry(entry);
          // Read through: followed from here on over the store's own connection, from the next revision.
          if (source !== this.kv && (entry.delta === 0 || entry.revision >= (this.loading?.through ?? 0))) {
            watcher.stop();
            break;
          }
        }
        if (firstRead) {
          firstRead.done();
          firstRead = null;
          continue;
        }
      } catch (error) {
        if (!this.closed)
          this.logger.warn({ err: error }, 'watching the actor bucket failed; watching again');
        // The first read's own connection failed: the rest of it comes over the store's.
        firstRead?.done();
        firstRead = null;
      }
      if (!this.closed) await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /**
   * A watch can stall without ending (a process frozen past the server's heartbeats, say): when the bucket
   * holds revisions the watch has not brought for a while, it is started again after the last one seen.
   */
  private async checkWatch(): Promise<void> {
    const last = (await this.kv.status()).streamInfo.state.last_seq;
    if (last <= this.watchedRevision) {
      // Every revision the bucket holds has come, and nothing since the last sweep: if the server's pending
      // count never said 0 (see startWatching: it is not exact), the first read ends here rather than never.
      if (this.loading && performance.now() - this.watchProgressAt >= this.options.sweepEveryMs / 2)
        this.loading.end();
      this.watchProgressAt = performance.now();
      return;
    }
    if (performance.now() - this.watchProgressAt < WATCH_STALL_MS) return;
    this.logger.warn(
      { seen: this.watchedRevision, stored: last },
      'the watch of the actor bucket stalled; watching again',
    );
    this.watchProgressAt = performance.now();
    this.watcher?.stop();
  }

  /** One operation at a time per key, in order. */
  private serial(key: string, work: () => Promise<void>): Promise<void> {
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => undefined);
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return next;
  }

  private track(promise: Promise<unknown>): void {
    const tracked = promise
      .catch((error: unknown) => this.logger.warn({ err: error }, 'background store work failed'))
      .finally(() => this.tasks.delete(tracked));
    this.tasks.add(tracked);
  }
}
