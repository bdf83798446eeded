import type { Logger } from 'pino';
import type { KV } from '@nats-io/kv';
import { isWrongRevision, timerAfterReads, withDeadline } from './kv-util.ts';

/** The holder stops acting this long (as a share of the TTL) after sending its last successful renewal. */
const VALID_SHARE = 0.7;

/**
 * A lease on one key of a KV bucket whose entries expire after `ttlMs` (the bucket's max age): whoever
 * creates the key holds the lease and renews it with revision-checked updates; if the holder dies, the
 * key expires and another instance creates it.
 *
 * Safety does not rest on timing alone. The holder acts only while `valid()`: less than 70% of the TTL
 * since it *sent* its last successful renewal, by the monotonic clock (which keeps running while a process
 * is frozen with SIGSTOP), so it stops before anyone else can take the key. And each take-over starts a new
 * `epoch` (the key's revision when it was created): the new holder claims each model's state with a
 * revision-checked write before acting on it, so that NATS itself refuses any later write of the old one.
 */
export class Lease {
  private held = false;
  private revision = 0;
  private currentEpoch = 0;
  /** performance.now() until which this instance may act (0: not held). */
  private validUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private stopped = false;
  private ticking: Promise<void> | null = null;
  /** A nudge came while an attempt was in flight: the next one starts as soon as it ends. */
  private nudged = false;
  /** Numbers the attempts: one given up at its deadline changes nothing when its answer comes late. */
  private attempts = 0;
  private readonly listeners = new Set<(held: boolean) => void>();
  /** Waits for validity (whenValid), which end as not valid when the lease is given up. */
  private readonly releaseWaiters = new Set<() => void>();
  /** Whether this instance is the holder is known: it took the lease, or saw another holder renew it. */
  private roleKnown = false;
  private readonly roleListeners = new Set<() => void>();
  /** The revision of another holder's entry when an attempt last found it (see seenHeldBy). */
  private othersRevision: number | null = null;

  constructor(
    private readonly kv: KV,
    private readonly key: string,
    private readonly holder: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    /** false: one attempt to take it; once not held (never taken, or lost), the lease stops for good. */
    private readonly contend = true,
  ) {}

  /**
   * One attempt to take the lease, without contending for it afterwards (partitions, see Partitions):
   * the lease, held and renewing itself, or null when someone else holds it.
   */
  static async take(
    kv: KV,
    key: string,
    holder: string,
    ttlMs: number,
    logger: Logger,
  ): Promise<Lease | null> {
    const lease = new Lease(kv, key, holder, ttlMs, logger, false);
    lease.ticking = lease.tick();
    await lease.ticking;
    return lease.held ? lease : null;
  }

  get isHeld(): boolean {
    return this.held;
  }

  /** Held, and renewed recently enough that nobody else can hold it yet: safe to act now. */
  valid(): boolean {
    return this.held && performance.now() < this.validUntil;
  }

  /** Resolves true once the lease is valid here (at once if it is), false after `timeoutMs`. */
  whenValid(timeoutMs: number): Promise<boolean> {
    if (this.valid()) return Promise.resolve(true);
    // Given up (released, or a partition's lease lost): never valid here again, so nothing waits for it (a
    // registry write waited 10 s for a lease its instance had released while stopping).
    if (this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(false), timeoutMs);
      timer.unref();
      const unlisten = this.onChange((held) => held && finish(this.valid()));
      const released = () => finish(false);
      this.releaseWaiters.add(released);
      const waiters = this.releaseWaiters;
      function finish(result: boolean): void {
        clearTimeout(timer);
        unlisten();
        waiters.delete(released);
        resolve(result);
      }
    });
  }

  /**
   * Resolves once it is known whether this instance holds the lease: it took it, or it saw another instance
   * renew it (a live holder; an entry left by a dead one is not renewed, and is taken once it expires). Or
   * after `timeoutMs`, NATS not answering.
   */
  whenRoleKnown(timeoutMs: number): Promise<void> {
    if (this.roleKnown) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(finish, timeoutMs);
      timer.unref();
      const listener = (): void => finish();
      const listeners = this.roleListeners;
      listeners.add(listener);
      function finish(): void {
        clearTimeout(timer);
        listeners.delete(listener);
        resolve();
      }
    });
  }

  /** The revision at which this instance took the lease: grows with every take-over. */
  get epoch(): number {
    return this.currentEpoch;
  }

  onChange(listener: (held: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.ticking || this.stopped) return;
    this.ticking = this.tick();
  }

  /** Try now (after a reconnect) instead of at the next tick. */
  nudge(): void {
    if (this.stopped) return;
    if (!this.timer) {
      // An attempt is in flight (it may have been sent while NATS was away): the next one follows it at once.
      this.nudged = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = null;
    this.ticking = this.tick();
  }

  /** Gives the lease up (deleting the key, so that a standby takes over at once) and stops trying. */
  async release(): Promise<void> {
    this.stopTrying();
    if (this.timer) clearTimeout(this.timer);
    if (this.watchdog) clearTimeout(this.watchdog);
    await this.ticking;
    if (!this.held) return;
    this.set(false);
    await this.kv.delete(this.key, { previousSeq: this.revision }).catch(() => undefined);
  }

  /** For good: this object is never valid again, and nothing waits for it to be (see whenValid). */
  private stopTrying(): void {
    this.stopped = true;
    for (const waiter of [...this.releaseWaiters]) waiter();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    if (!this.contend && this.currentEpoch !== 0 && !this.held) {
      this.stopTrying(); // taken once, lost since: not taken again by this object
      return;
    }
    const timeout = this.ttlMs / 4;
    const sentAt = performance.now();
    this.nudged = false;
    const attempt = ++this.attempts;
    try {
      await withDeadline(this.attempt(attempt, sentAt), timeout, `lease ${this.key}`);
      if (this.held) this.knowRole();
    } catch (error) {
      if (this.held && isWrongRevision(error)) {
        this.logger.warn({ err: error, lease: this.key }, 'lost the lease');
        this.lost();
      } else if (!isWrongRevision(error)) {
        this.logger.debug({ err: error, lease: this.key }, 'could not renew or take the lease');
      }
    }
    if (this.stopped) return;
    if (!this.held && !this.contend) {
      this.stopTrying();
      if (this.watchdog) clearTimeout(this.watchdog);
      return;
    }
    // Renew well within the TTL; stand-bys look more often, so that a dead holder is replaced soon after
    // its entry expires. Counted from when this attempt was sent, not from when its answer was read: on a
    // busy process (half a second between turns of the event loop under a burst of inputs) the answer is
    // read late, and waiting a whole period after that stretched the renewals toward the lease's validity.
    const period = this.held ? this.ttlMs / 4 : this.ttlMs / 8;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.ticking = this.tick();
      },
      this.nudged ? 0 : Math.max(0, sentAt + period - performance.now()),
    );
    this.timer.unref();
  }

  /**
   * One renewal, or one attempt to take the lease. Bounded by the caller: a request sent while NATS was away
   * can go unanswered for the client's whole request timeout (5 s by default), and attempts follow each
   * other, so one such request held the lease back that long after NATS came back. An attempt given up
   * changes nothing when its answer comes: if its write went through, the next attempt finds the entry
   * still ours and takes it back, or finds its revision moved and lets the lease go, as for any loss.
   */
  private async attempt(attempt: number, sentAt: number): Promise<void> {
    const current = () => attempt === this.attempts && !this.stopped;
    if (this.held) {
      // The client's own timeout is longer than the attempt's deadline, which bounds the wait: the client's
      // timer would fire before an answer that came while the process was busy is read (see withDeadline).
      const revision = await this.kv.update(this.key, this.holder, this.revision, this.ttlMs);
      if (current()) this.renewed(revision, sentAt);
      return;
    }
    let epoch: number;
    let revision: number;
    try {
      revision = epoch = await this.kv.create(this.key, this.holder);
    } catch (error) {
      // Still ours from before a hiccup (the watchdog let it go, the entry lives on): take it back.
      const entry = await this.kv.get(this.key);
      if (!entry || entry.operation !== 'PUT' || entry.string() !== this.holder) {
        if (entry?.operation === 'PUT') this.seenHeldBy(entry.revision);
        throw error;
      }
      // Nobody else holds it now. Unchanged since this instance last wrote it: the same epoch goes on.
      // Written since (an attempt given up whose write went through, perhaps after another instance held
      // and lost it): a new epoch, above any that other holder used.
      epoch = entry.revision > this.revision || this.currentEpoch === 0 ? entry.revision : this.currentEpoch;
      revision = await this.kv.update(this.key, this.holder, entry.revision, this.ttlMs);
    }
    if (!current()) return;
    this.renewed(revision, sentAt);
    this.currentEpoch = epoch;
    this.set(true);
  }

  /** Another instance's entry, found at `revision`: renewed since it was last found, its holder is alive. */
  private seenHeldBy(revision: number): void {
    if (this.othersRevision !== null && revision > this.othersRevision) this.knowRole();
    this.othersRevision = revision;
  }

  private knowRole(): void {
    if (this.roleKnown) return;
    this.roleKnown = true;
    for (const listener of [...this.roleListeners]) listener();
  }

  /** Renewed: act until VALID_SHARE of the TTL after the request left, and let go then if nothing follows. */
  private renewed(revision: number, sentAt: number): void {
    this.revision = revision;
    this.validUntil = sentAt + this.ttlMs * VALID_SHARE;
    this.armWatchdog();
  }

  /**
   * Lets the lease go once its validity has passed with no renewal. Decided after the sockets are read
   * (as withDeadline does): timers run at the start of a turn of the event loop, so on a process busy past
   * the validity the watchdog would otherwise run before a renewal answered in time and not read yet. A
   * watchdog that finds the lease still valid (renewed meanwhile, or its timer a little early: timers count
   * whole milliseconds) waits again for what is left.
   */
  private armWatchdog(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = timerAfterReads(
      () => {
        if (!this.held || this.stopped) return;
        if (performance.now() < this.validUntil) {
          this.armWatchdog();
          return;
        }
        this.logger.warn({ lease: this.key }, 'could not renew the lease in time; letting it go');
        this.lost();
      },
      Math.max(0, this.validUntil - performance.now()),
    );
  }

  private lost(): void {
    this.validUntil = 0;
    this.set(false);
  }

  private set(held: boolean): void {
    if (this.held === held) return;
    this.held = held;
    this.logger.info(
      { lease: this.key, holder: this.holder, epoch: this.currentEpoch },
      held ? 'took the lease' : 'gave up the lease',
    );
    for (const listener of this.listeners) listener(held);
  }
}
