import type { Logger } from 'pino';
import type { KV } from '@nats-io/kv';
import { withDeadline } from './kv-util.ts';
import { Lease } from './lease.ts';

/** What a partition's work is, for the instance that takes it (the bus's per-partition intakes). */
export interface PartitionWork {
  stop(): Promise<void>;
}

export interface PartitionsOptions {
  /** How many partitions the inputs are in (nats.partitions). */
  readonly count: number;
  /** The lease bucket (entries expire after `ttlMs` unless renewed). */
  readonly kv: KV;
  /** Who this instance is, written in every lease it holds. */
  readonly holder: string;
  /** This instance's heartbeat key token (letters and digits). */
  readonly instanceId: string;
  readonly ttlMs: number;
  /** Starts the work of a partition just taken (consumers, claims). */
  readonly open: (partition: number, lease: Lease) => PartitionWork;
  /** A partition came or went (for logs, metrics and traces). */
  readonly onChange?: (held: readonly number[]) => void;
  readonly onTransientFailure?: (what: string, error: unknown) => void;
}

const leaseKey = (partition: number): string => `partition.${partition}`;
const INSTANCES = 'instance.>';

/**
 * Shares the input partitions out between the live instances, on NATS KV only: each partition is a lease
 * (a key in the lease bucket, see Lease: renewed with revision checks, expiring when its holder dies, a new
 * epoch with every take-over); each live instance keeps a heartbeat key in the same bucket. An instance
 * holds at most ceil(partitions / live instances): it takes free partitions up to that share and gives the
 * excess back (its consumers stop once what they hold is acknowledged, then the key is deleted), so that a
 * joining instance gets work and a dead one's partitions are taken once their leases expire.
 */
export class Partitions {
  private readonly held = new Map<number, { lease: Lease; work: PartitionWork }>();
  private readonly leaving = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  /** A nudge came while a look was under way: the next one starts as soon as it ends. */
  private nudged = false;
  private ticking: Promise<void> | null = null;
  private stopped = false;
  private live = 1;
  private lastBeat = 0;

  constructor(
    private readonly options: PartitionsOptions,
    private readonly logger: Logger,
  ) {}

  /**
   * The lease of a partition held here (valid or not), or null. A partition being given back keeps its
   * lease until its consumers have finished what they hold: their commits still need it.
   */
  lease(partition: number): Lease | null {
    return this.held.get(partition)?.lease ?? null;
  }

  /** The partitions held here, in order. */
  list(): number[] {
    return [...this.held.keys()].filter((p) => !this.leaving.has(p)).sort((a, b) => a - b);
  }

  /** Live instances, as last counted (this one included). */
  instances(): number {
    return this.live;
  }

  start(): void {
    if (this.ticking || this.stopped) return;
    this.ticking = this.tick();
  }

  /** Look again now (after a reconnection) instead of at the next tick. */
  nudge(): void {
    if (this.stopped) return;
    if (!this.timer) {
      // A look is under way (it may have asked while NATS was away): the next one follows it at once.
      this.nudged = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = null;
    this.ticking = this.tick();
  }

  /** Gives every partition back (consumers stopped, leases deleted) and the heartbeat, and stops. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    await Promise.all([...this.held.keys()].map((p) => this.giveUp(p)));
    await this.options.kv.delete(`instance.${this.options.instanceId}`).catch(() => undefined);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const { kv, ttlMs, count } = this.options;
    this.nudged = false;
    // Each step bounded: one that NATS never answers must not hold the partitions back (see withDeadline).
    const bound = <T>(work: Promise<T>) => withDeadline(work, ttlMs / 4, 'partitions');
    try {
      const now = performance.now();
      if (now - this.lastBeat >= ttlMs / 4) {
        await bound(kv.put(`instance.${this.options.instanceId}`, this.options.holder));
        this.lastBeat = now;
        this.live = Math.max(1, await bound(this.countInstances()));
      }
      const target = Math.ceil(count / this.live);
      const mine = this.list();
      if (mine.length > target) {
        // The highest-numbered first: every instance gives back the same way, so shares settle quickly.
        for (const partition of mine.slice(target)) void this.giveUp(partition);
      } else if (mine.length < target) {
        const offset = Math.floor(Math.random() * count);
        let taking = mine.length;
        for (let i = 0; i < count && taking < target && !this.stopped; i++) {
          const partition = (offset + i) % count;
          if (this.held.has(partition)) continue;
          const lease = await Lease.take(kv, leaseKey(partition), this.options.holder, ttlMs, this.logger);
          if (!lease) continue;
          if (this.stopped) {
            await lease.release();
            break;
          }
          this.adopt(partition, lease);
          taking++;
        }
      }
    } catch (error) {
      this.options.onTransientFailure?.('partitions', error);
      this.logger.debug({ err: error }, 'could not look at the partitions; trying again');
    }
    if (this.stopped) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.ticking = this.tick();
      },
      this.nudged ? 0 : ttlMs / 8,
    );
    this.timer.unref();
  }

  private async countInstances(): Promise<number> {
    let n = 0;
    for await (const key of await this.options.kv.keys(INSTANCES)) if (key) n++;
    return n;
  }

  private adopt(partition: number, lease: Lease): void {
    let work: PartitionWork;
    try {
      work = this.options.open(partition, lease);
    } catch (error) {
      // Closing meanwhile: the partition goes back at once instead of being renewed with nobody on it.
      void lease.release();
      throw error;
    }
    this.held.set(partition, { lease, work });
    this.logger.info({ partition, epoch: lease.epoch, live: this.live }, 'took a partition');
    // Lost (not renewed in time, or taken by someone else after a freeze): its consumers stop at once.
    lease.onChange((held) => {
      if (!held && this.held.get(partition)?.lease === lease) void this.giveUp(partition);
    });
    this.options.onChange?.(this.list());
  }

  /** Stops the partition's consumers (what they hold is acknowledged or given back), then frees its lease. */
  private async giveUp(partition: number): Promise<void> {
    const entry = this.held.get(partition);
    if (!entry || this.leaving.has(partition)) return;
    this.leaving.add(partition);
    this.options.onChange?.(this.list());
    try {
      await entry.work.stop();
    } catch (error) {
      this.logger.warn({ err: error, partition }, 'stopping the consumers of a partition failed');
    }
    await entry.lease.release().catch(() => undefined);
    this.held.delete(partition);
    this.leaving.delete(partition);
    this.logger.info({ partition }, 'gave a partition back');
  }
}
