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

  /** On start: whatever was committed but not yet published. */
  resumePending(): void {
    this.running = (async () => {
      const pending = await this.store.pendingOutbox(PAGE);
      this.queue.unshift(...pending.filter((p) => !this.queue.some((q) => q.id === p.id)));
    })().finally(() => {
      this.running = null;
      this.kick();
    });
  }

  isIdle(): boolean {
    return this.queue.length === 0 && this.running === null;
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private kick(): void {
    if (this.running || this.queue.length === 0) return;
    this.running = this.drain().finally(() => {
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
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.kick();
        }, RETRY_MS);
        this.retryTimer.unref();
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
