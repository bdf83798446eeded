import type { BusMessage, EventBus, SubscribeOptions, Unsubscribe } from '../actors/ports.ts';
import { subjectMatches } from './subjects.ts';

interface Delivery {
  readonly message: BusMessage;
  /** Settles the publisher's wait (durable subscriptions only). */
  readonly done: ((error?: unknown) => void) | null;
}

interface Subscription {
  readonly pattern: string;
  readonly handler: (message: BusMessage) => Promise<void> | void;
  readonly durable: boolean;
  readonly queue: Delivery[];
  draining: boolean;
  active: boolean;
}

/**
 * The embedded mode's bus: in process, with the NATS mode's subjects. Every subscriber gets every matching
 * message (broadcast, as in NATS core), in order, one at a time, and never inside the publisher's call
 * stack: a handler may publish without re-entering an actor mid-transition. A handler that throws is
 * reported to `onError` and the next message is still delivered.
 *
 * `publish` resolves when every durable subscriber has handled the message, and rejects when one of them
 * failed: the outbox then keeps the event and publishes it again, as JetStream would redeliver it. So a
 * rollback's event is forgotten only after the training config's pause is committed, whatever instant the
 * process dies.
 */
export class MemoryBus implements EventBus {
  private readonly subscriptions = new Set<Subscription>();
  private pending = 0;
  private waiters: Array<() => void> = [];
  private closed = false;

  constructor(private readonly onError: (error: unknown, message: BusMessage) => void = () => {}) {}

  async publish(subject: string, payload: unknown): Promise<void> {
    if (this.closed) throw new Error(`bus closed: cannot publish on ${subject}`);
    // Subscribers get their own copy, as they would over the wire.
    const message: BusMessage = { subject, data: structuredClone(payload) };
    const handled: Array<Promise<void>> = [];
    for (const sub of this.subscriptions) {
      if (!subjectMatches(sub.pattern, subject)) continue;
      let done: Delivery['done'] = null;
      if (sub.durable) {
        handled.push(
          new Promise<void>((resolve, reject) => {
            done = (error) => (error === undefined ? resolve() : reject(error));
          }),
        );
      }
      sub.queue.push({ message, done });
      this.pending++;
      if (!sub.draining) {
        sub.draining = true;
        queueMicrotask(() => void this.drain(sub));
      }
    }
    await Promise.all(handled);
  }

  subscribe(
    pattern: string,
    handler: (message: BusMessage) => Promise<void> | void,
    options: SubscribeOptions = {},
  ): Unsubscribe {
    const sub: Subscription = {
      pattern,
      handler,
      durable: options.durable ?? false,
      queue: [],
      draining: false,
      active: true,
    };
    this.subscriptions.add(sub);
    return () => {
      sub.active = false;
      this.subscriptions.delete(sub);
      // Whoever waits on this subscriber's deliveries hears that they were not handled.
      for (const delivery of sub.queue.splice(0)) {
        delivery.done?.(
          new Error(`unsubscribed from ${pattern} before handling ${delivery.message.subject}`),
        );
        this.settleOne();
      }
    };
  }

  private async drain(sub: Subscription): Promise<void> {
    while (sub.queue.length > 0) {
      const delivery = sub.queue.shift()!;
      try {
        if (sub.active) await sub.handler(delivery.message);
        delivery.done?.();
      } catch (error) {
        delivery.done?.(error ?? new Error('handler failed'));
        this.onError(error, delivery.message);
      } finally {
        this.settleOne();
      }
    }
    sub.draining = false;
  }

  private settleOne(): void {
    this.pending--;
    if (this.pending === 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    await this.idle();
    this.closed = true;
    this.subscriptions.clear();
  }
}
