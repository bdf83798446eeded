import type { Logger } from 'pino';
import type { KV } from '@nats-io/kv';
import { isWrongRevision } from './kv-util.ts';

/**
 * A lease on one key of a KV bucket whose entries expire after `ttlMs` (the bucket's max age): whoever
 * creates the key holds the lease and renews it with revision-checked updates; if the holder dies, the
 * key expires and another instance creates it. A holder that cannot renew for most of the TTL gives the
 * lease up by itself, before anyone else can take it.
 *
 * Inputs need it: JetStream keeps order only within one consumer client, and per-model order matters
 * (a promotion before the evaluations of that version), so one instance at a time takes the inputs
 * while the others stand by. nats-server 2.11's pinned consumers would do the same without a lease.
 */
export class Lease {
  private held = false;
  private revision = 0;
  private timer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private stopped = false;
  private ticking: Promise<void> | null = null;
  private readonly listeners = new Set<(held: boolean) => void>();

  constructor(
    private readonly kv: KV,
    private readonly key: string,
    private readonly holder: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
  ) {}

  get isHeld(): boolean {
    return this.held;
  }

  onChange(listener: (held: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.ticking || this.stopped) return;
    this.ticking = this.tick();
  }

  /** Gives the lease up (deleting the key, so that a standby takes over at once) and stops trying. */
  async release(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.watchdog) clearTimeout(this.watchdog);
    await this.ticking;
    if (!this.held) return;
    this.set(false);
    await this.kv.delete(this.key, { previousSeq: this.revision }).catch(() => undefined);
  }

  private async tick(): Promise<void> {
    const timeout = this.ttlMs / 4;
    try {
      if (this.held) {
        this.renewed(await this.kv.update(this.key, this.holder, this.revision, timeout));
      } else {
        try {
          this.renewed(await this.kv.create(this.key, this.holder));
        } catch (error) {
          // Still ours from before a hiccup (the watchdog let it go, the entry lives on): take it back.
          const entry = await this.kv.get(this.key);
          if (!entry || entry.operation !== 'PUT' || entry.string() !== this.holder) throw error;
          this.renewed(await this.kv.update(this.key, this.holder, entry.revision, timeout));
        }
        this.set(true);
      }
    } catch (error) {
      if (this.held && isWrongRevision(error)) {
        this.logger.warn({ err: error, lease: this.key }, 'lost the lease');
        this.set(false);
      } else if (!isWrongRevision(error)) {
        this.logger.debug({ err: error, lease: this.key }, 'could not renew or take the lease');
      }
    }
    if (this.stopped) return;
    // Renew well within the TTL; stand-bys try about as often, so that a dead holder is replaced soon
    // after its entry expires.
    this.timer = setTimeout(() => {
      this.ticking = this.tick();
    }, this.ttlMs / 4);
    this.timer.unref();
  }

  /** Renewed now: hold on for most of the TTL, and let go by ourselves if no renewal follows in time. */
  private renewed(revision: number): void {
    this.revision = revision;
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      if (!this.held) return;
      this.logger.warn({ lease: this.key }, 'could not renew the lease in time; letting it go');
      this.set(false);
    }, this.ttlMs * 0.6);
    this.watchdog.unref();
  }

  private set(held: boolean): void {
    if (this.held === held) return;
    this.held = held;
    this.logger.info({ lease: this.key, holder: this.holder }, held ? 'took the lease' : 'gave up the lease');
    for (const listener of this.listeners) listener(held);
  }
}
