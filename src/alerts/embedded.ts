import type { Logger } from 'pino';
import type { Clock, EventBus } from '../actors/ports.ts';
import { AlertSchema } from '../domain/events.ts';
import { afterAttempt, newDelivery, type RetryPolicy, type Send } from './deliver.ts';
import { deliveryId, type DeliveryRecord } from './ledger.ts';
import type { SqliteAlertLedger } from './sqlite-ledger.ts';
import { targetsFor, type AlertTarget } from './targets.ts';

export interface AlertDriverDeps {
  readonly bus: EventBus;
  readonly prefix: string;
  readonly targets: readonly AlertTarget[];
  readonly send: Send;
  readonly policy: RetryPolicy;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly onAttempt?: ((result: 'delivered' | 'retried' | 'failed') => void) | undefined;
}

/** Logs and counts one attempt's result; shared by both modes. */
export function reportAttempt(deps: AlertDriverDeps, before: DeliveryRecord, after: DeliveryRecord): void {
  const fields = {
    alert: after.alert.event_id,
    kind: after.alert.kind,
    target: after.target,
    attempt: after.attempts,
  };
  if (after.status === 'delivered') {
    deps.onAttempt?.('delivered');
    deps.logger.info(fields, 'alert delivered');
  } else if (after.status === 'failed') {
    deps.onAttempt?.('failed');
    deps.logger.error({ ...fields, problem: after.problem }, 'alert delivery: giving up');
  } else if (after.attempts > before.attempts) {
    deps.onAttempt?.('retried');
    deps.logger.warn(
      { ...fields, problem: after.problem, retryInMs: after.dueAt - deps.clock.now() },
      'alert delivery failed; retrying',
    );
  }
}

/**
 * Embedded mode: each alert's deliveries are written to SQLite when it is published, then attempted in
 * the background until delivered or given up; timers wait on the service's clock. On start, whatever a
 * previous run left pending is picked up again. Nothing here delays the bus or throws into it.
 */
export class EmbeddedAlertDelivery {
  private readonly shutdown = new AbortController();
  private timer: unknown = null;
  private running: Promise<void> | null = null;
  private again = false;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly ledger: SqliteAlertLedger,
    private readonly deps: AlertDriverDeps,
  ) {}

  start(): void {
    this.unsubscribe = this.deps.bus.subscribe(
      `${this.deps.prefix}.evt.alert.*`,
      (message) => {
        const parsed = AlertSchema.safeParse(message.data);
        if (!parsed.success) {
          this.deps.logger.warn(
            { subject: message.subject },
            'alerts: ignored a message that is not an alert',
          );
          return;
        }
        const now = this.deps.clock.now();
        for (const target of targetsFor(parsed.data, this.deps.targets)) {
          const id = deliveryId(parsed.data, target.id);
          // A replayed alert (the outbox after a crash) finds its record and is not sent again.
          if (this.ledger.getNow(id) === null)
            this.ledger.putNow(newDelivery(id, target, parsed.data, now), now);
        }
        this.kick();
        // Durable: the outbox forgets an alert only once its deliveries are in the ledger (a crash before
        // that publishes it again on start).
      },
      { durable: true },
    );
    this.kick();
  }

  /** Resolves when no attempt is running (pending ones may be waiting for their time). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.shutdown.abort();
    if (this.timer !== null) this.deps.clock.clearTimeout(this.timer);
    await this.idle();
    await this.ledger.close();
  }

  private kick(): void {
    if (this.shutdown.signal.aborted) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.deliverDue()
      .catch((error: unknown) => this.deps.logger.error({ err: error }, 'alerts: delivery round failed'))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.kick();
        } else this.schedule();
      });
  }

  private async deliverDue(): Promise<void> {
    const targets = new Map(this.deps.targets.map((t) => [t.id, t]));
    for (const record of this.ledger.pending()) {
      if (this.shutdown.signal.aborted) return;
      if (record.dueAt > this.deps.clock.now()) break;
      const target = targets.get(record.target);
      if (!target) {
        // The route was removed from the configuration since: nothing to deliver to.
        this.ledger.putNow({ ...record, status: 'failed', problem: 'route no longer configured' });
        continue;
      }
      const result = await this.deps.send(target, record.alert, this.shutdown.signal);
      // Shutting down mid-attempt: the record stays pending and the next start tries again.
      if (this.shutdown.signal.aborted) return;
      const next = afterAttempt(record, result, this.deps.clock.now(), this.deps.policy);
      this.ledger.putNow(next, this.deps.clock.now());
      reportAttempt(this.deps, record, next);
    }
  }

  private schedule(): void {
    if (this.shutdown.signal.aborted) return;
    if (this.timer !== null) this.deps.clock.clearTimeout(this.timer);
    this.timer = null;
    const next = this.ledger.pending()[0];
    if (!next) return;
    this.timer = this.deps.clock.setTimeout(
      () => {
        this.timer = null;
        this.kick();
      },
      Math.max(0, next.dueAt - this.deps.clock.now()),
    );
  }
}
