import type { Logger } from 'pino';
import type { EventBus, OutboxEntry, StateStore } from './ports.ts';
import type { OutputEvent } from '../domain/events.ts';

const RETRY_MS = 1000;
const PAGE = 500;
/** While publishing keeps failing for the same reason, it is logged this often. */
const FAILING_LOG_EVERY_MS = 60_000;

/**
 * Publishes committed events in commit order, then forgets them. Entries stay in the store until they are
 * published, so a crash between commit and publish republishes them on start, with the same ids (the NATS
 * transport deduplicates by message id).
 */
export class Outbox {
  private queue: OutboxEntry[] = [];
  private running: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Nothing is published before `start`: the subscribers who must act on events are not there yet. */
  private started = false;
  /** The store's bookkeeping of published entries, in order, off the publishing path. */
  private marking: Promise<void> = Promise.resolve();
  private marks = 0;
  /** Whoever waits for the next publishing attempt (see nextAttempt). */
  private attemptWaiters: Array<() => void> = [];

  /** The failing episode under way: since when attempts fail, how many did, and what was last logged. */
  private failing: { since: number; attempts: number; loggedAt: number; reason: string } | null = null;

  constructor(
    private readonly store: StateStore,
    private readonly bus: EventBus,
    private readonly logger: Logger,
    private readonly published: (event: OutputEvent) => void,
    /** Told of every failed publishing attempt (a metric). */
    private readonly failed: (error: unknown) => void = () => undefined,
  ) {}

  enqueue(entries: readonly OutboxEntry[]): void {
    if (entries.length === 0) return;
    this.queue.push(...entries);
    this.kick();
  }

  /** Starts publishing: first whatever was committed but not yet published, then what comes. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.resumePending();
  }

  /** Everything left from before, in commit order, ahead of what was committed since (no page is left behind). */
  private resumePending(): void {
    this.running = (async () => {
      const pending = await this.store.pendingOutbox(Number.MAX_SAFE_INTEGER);
      const queued = new Set(this.queue.map((q) => q.id));
      this.queue.unshift(...pending.filter((p) => !queued.has(p.id)));
    })().finally(() => {
      this.running = null;
      this.kick();
    });
  }

  /**
   * Queues, ahead of what waits, what the store holds unpublished that this outbox was never handed: for a
   * store that read its records after `start` (see StateStore.whenLoaded), once it has read them all.
   */
  catchUp(): void {
    if (!this.started) return; // `start` reads them all
    void this.store
      .pendingOutbox(Number.MAX_SAFE_INTEGER)
      .then((pending) => {
        const queued = new Set(this.queue.map((q) => q.id));
        const fresh = pending.filter((p) => !queued.has(p.id));
        if (fresh.length === 0) return;
        this.queue.unshift(...fresh);
        this.kick();
      })
      .catch((error: unknown) =>
        this.logger.warn(
          { err: error },
          'could not read the events left unpublished; the sweep publishes them',
        ),
      );
  }

  /** Stops publishing; what is still queued stays in the store for the next start. */
  stop(): void {
    this.started = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.attempted();
  }

  /**
   * Resolves once the publishing under way, or the next one (after a failure, the retry), has ended; at once
   * when nothing waits to be published. Lets a caller wait for progress without polling.
   */
  nextAttempt(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    // Only the store's bookkeeping is left: no attempt follows, its end is what to wait for.
    if (this.queue.length === 0 && this.running === null) return this.marking;
    return new Promise((resolve) => this.attemptWaiters.push(resolve));
  }

  private attempted(): void {
    for (const resolve of this.attemptWaiters.splice(0)) resolve();
  }

  /** Events queued and not yet published. */
  pending(): number {
    return this.queue.length;
  }

  isIdle(): boolean {
    return !this.started || (this.queue.length === 0 && this.running === null && this.marks === 0);
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
    await this.marking;
  }

  private kick(): void {
    if (!this.started || this.running || this.queue.length === 0) return;
    this.running = this.drain()
      .catch((error: unknown) => {
        // Only an observer can throw here (publishing and bookkeeping failures are handled in drain).
        this.logger.error({ err: error }, 'publishing events failed unexpectedly');
      })
      .finally(() => {
        this.running = null;
        if (this.queue.length > 0 && this.retryTimer === null) this.kick();
        this.attempted();
      });
  }

  /**
   * Each page is sent at once (pipelined: the publications leave in commit order on one connection, each
   * with its event id as message id) and its acknowledgements awaited together: a commit's events cost one
   * round trip, not one each. The store is told what was published without holding up the next page (that
   * bookkeeping never fails, see StateStore.markPublished; idle() waits for it).
   */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const entries = this.queue.splice(0, PAGE);
      const results = await this.send(entries);
      // What was acknowledged, up to the first failure, is done; from there on everything is sent again, in
      // order (what the server took meanwhile is dropped as a duplicate by its message id).
      let ok = results.findIndex((r) => r.status === 'rejected');
      if (ok < 0) ok = entries.length;
      const done = entries.slice(0, ok);
      for (const entry of done)
        this.published({ type: subjectType(entry), payload: entry.payload } as OutputEvent);
      this.bookkeep(done.map((e) => e.id));
      if (ok < entries.length) {
        // Keep order: what was not published goes back to the front and is retried later.
        this.queue.unshift(...entries.slice(ok));
        const failure = results[ok] as PromiseRejectedResult;
        this.failedAttempt(failure.reason);
        if (this.started) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.kick();
          }, RETRY_MS);
          this.retryTimer.unref();
        }
        return;
      }
      this.recovered();
    }
  }

  /**
   * A failed attempt: counted every time; logged when a failing episode starts, when its reason changes, and
   * once a minute while it lasts (the attempts come every second), with how many events wait.
   */
  private failedAttempt(error: unknown): void {
    this.failed(error);
    const now = performance.now();
    const reason = error instanceof Error ? error.message : String(error);
    const episode = (this.failing ??= { since: now, attempts: 0, loggedAt: -Infinity, reason: '' });
    episode.attempts++;
    if (episode.reason === reason && now - episode.loggedAt < FAILING_LOG_EVERY_MS) return;
    episode.reason = reason;
    episode.loggedAt = now;
    this.logger.error(
      {
        err: error,
        waiting: this.queue.length,
        attempts: episode.attempts,
        failingForSeconds: Math.round((now - episode.since) / 1000),
      },
      'publishing events failed; they stay stored and are tried again, in order, every second',
    );
  }

  /** Everything queued went out: a failing episode, if any, is over. */
  private recovered(): void {
    if (this.failing === null) return;
    const { since, attempts } = this.failing;
    this.failing = null;
    this.logger.info(
      { attempts, failedForSeconds: Math.round((performance.now() - since) / 1000) },
      'publishing events works again',
    );
  }

  /** Pipelined when the bus allows it; else one after another, stopping at the first failure. */
  private async send(entries: OutboxEntry[]): Promise<Array<PromiseSettledResult<void>>> {
    const publish = (entry: OutboxEntry) =>
      this.bus.publish(entry.subject, entry.payload, { msgId: entry.id });
    if (this.bus.pipelined) return Promise.allSettled(entries.map(publish));
    const results: Array<PromiseSettledResult<void>> = [];
    for (const entry of entries) {
      try {
        await publish(entry);
        results.push({ status: 'fulfilled', value: undefined });
      } catch (reason) {
        results.push({ status: 'rejected', reason });
        break;
      }
    }
    return results;
  }

  /** Tells the store (in the background, in order) which entries were published. */
  private bookkeep(ids: string[]): void {
    if (ids.length === 0) return;
    const next = this.marking.then(() =>
      this.store.markPublished(ids).catch((error: unknown) => {
        // The store could not be told (it is closing, or failing): the entries are published again later,
        // under the same ids, which consumers deduplicate.
        this.logger.warn({ err: error }, 'could not mark events as published');
      }),
    );
    this.marking = next;
    this.marks++;
    void next.finally(() => this.marks--);
  }
}

/** The output event type from a subject (`<prefix>.evt.<kind>.<key>`), for observers. */
function subjectType(entry: OutboxEntry): string {
  const kind = entry.subject.split('.').at(-2) ?? '';
  return kind.toUpperCase();
}
