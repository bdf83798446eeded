import type { Logger } from 'pino';
import type { EventBus, OutboxEntry, StateStore } from './ports.ts';
import type { OutputEvent } from '../domain/events.ts';

const RETRY_MS = 1000;
const PAGE = 500;

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

  constructor(
    private readonly store: StateStore,
    private readonly bus: EventBus,
    private readonly logger: Logger,
    private readonly published: (event: OutputEvent) => void,
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

  /** Stops publishing; what is still queued stays in the store for the next start. */
  stop(): void {
    this.started = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  isIdle(): boolean {
    return !this.started || (this.queue.length === 0 && this.running === null);
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private kick(): void {
    if (!this.started || this.running || this.queue.length === 0) return;
    this.running = this.drain()
      .catch((error: unknown) => {
        // The store could not be told (it is closing, or failing): the entries are published again later,
        // under the same ids, which consumers deduplicate.
        this.logger.warn({ err: error }, 'could not mark events as published');
      })
      .finally(() => {
        this.running = null;
        if (this.queue.length > 0 && this.retryTimer === null) this.kick();
      });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const entries = this.queue.splice(0, PAGE);
      const done: string[] = [];
      try {
        for (const entry of entries) {
          await this.bus.publish(entry.subject, entry.payload, { msgId: entry.id });
          done.push(entry.id);
          this.published({ type: subjectType(entry), payload: entry.payload } as OutputEvent);
        }
      } catch (error) {
        // Keep order: what was not published goes back to the front and is retried later.
        this.queue.unshift(...entries.slice(done.length));
        this.logger.warn({ err: error }, 'publishing failed; retrying');
        if (this.started) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.kick();
          }, RETRY_MS);
          this.retryTimer.unref();
        }
        await this.store.markPublished(done);
        return;
      }
      await this.store.markPublished(done);
    }
  }
}

/** The output event type from a subject (`<prefix>.evt.<kind>.<key>`), for observers. */
function subjectType(entry: OutboxEntry): string {
  const kind = entry.subject.split('.').at(-2) ?? '';
  return kind.toUpperCase();
}
