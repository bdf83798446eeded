import { AlertSchema } from '../domain/events.ts';
import { WardenError } from '../domain/errors.ts';
import { afterAttempt, newDelivery } from './deliver.ts';
import { reportAttempt, type AlertDriverDeps } from './embedded.ts';
import { deliveryId, type AlertLedger } from './ledger.ts';
import { targetsFor } from './targets.ts';

/**
 * NATS mode: alerts come from the shared durable consumer on `<prefix>.evt.alert.*`, which hands each
 * one to a single instance and redelivers it until it is acknowledged. The handler attempts every due
 * delivery, records the result in the shared KV ledger, and fails (so the message is not acknowledged and
 * comes back a few seconds later, to this instance or another) while any is still pending. A restart, a
 * crash or a second instance therefore neither loses an alert nor sends one twice: a delivery recorded as
 * done is skipped, one not yet due (backoff) waits for its time.
 */
export class NatsAlertDelivery {
  private readonly shutdown = new AbortController();
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly ledger: AlertLedger,
    private readonly deps: AlertDriverDeps,
  ) {}

  start(): void {
    this.unsubscribe = this.deps.bus.subscribe(`${this.deps.prefix}.evt.alert.*`, async (message) => {
      const parsed = AlertSchema.safeParse(message.data);
      if (!parsed.success) {
        this.deps.logger.warn({ subject: message.subject }, 'alerts: ignored a message that is not an alert');
        return;
      }
      const alert = parsed.data;
      const waiting: string[] = [];
      for (const target of targetsFor(alert, this.deps.targets)) {
        const id = deliveryId(alert, target.id);
        const record = (await this.ledger.get(id)) ?? newDelivery(id, target, alert, this.deps.clock.now());
        if (record.status !== 'pending') continue;
        if (record.dueAt <= this.deps.clock.now() && !this.shutdown.signal.aborted) {
          const result = await this.deps.send(target, alert, this.shutdown.signal);
          if (!this.shutdown.signal.aborted) {
            const next = afterAttempt(record, result, this.deps.clock.now(), this.deps.policy);
            await this.ledger.put(next);
            reportAttempt(this.deps, record, next);
            if (next.status !== 'pending') continue;
          }
        }
        waiting.push(target.id);
      }
      // 'unavailable' is transient for the consumer: redelivered for as long as it takes, never dropped.
      if (waiting.length > 0)
        throw new WardenError(
          'unavailable',
          `alert ${alert.event_id}: delivery pending to ${waiting.join(', ')}`,
        );
    });
  }

  async close(): Promise<void> {
    this.shutdown.abort();
    this.unsubscribe?.();
    await this.ledger.close();
  }
}
