import type { BusMessage, EventBus, Unsubscribe } from '../actors/ports.ts';
import { subjectMatches } from './subjects.ts';

interface Subscription {
  readonly pattern: string;
  readonly handler: (message: BusMessage) => Promise<void> | void;
  readonly queue: BusMessage[];
  draining: boolean;
  active: boolean;
}

/**
 * The embedded mode's bus: in process, with the NATS mode's subjects. Every subscriber gets every matching
 * message (broadcast, as in NATS core), in order, one at a time, and never inside the publisher's call
 * stack: a handler may publish without re-entering an actor mid-transition. A handler that throws is
 * reported to `onError` and the next message is still delivered.
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
    for (const sub of this.subscriptions) {
      if (!subjectMatches(sub.pattern, subject)) continue;
      sub.queue.push(message);
      this.pending++;
      if (!sub.draining) {
        sub.draining = true;
        queueMicrotask(() => void this.drain(sub));
      }
    }
  }

  subscribe(pattern: string, handler: (message: BusMessage) => Promise<void> | void): Unsubscribe {
    const sub: Subscription = { pattern, handler, queue: [], draining: false, active: true };
    this.subscriptions.add(sub);
    return () => {
      sub.active = false;
      this.subscriptions.delete(sub);
    };
  }

  private async drain(sub: Subscription): Promise<void> {
    while (sub.queue.length > 0) {
      const message = sub.queue.shift()!;
      try {
        if (sub.active) await sub.handler(message);
      } catch (error) {
        this.onError(error, message);
      } finally {
        this.pending--;
      }
    }
    sub.draining = false;
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
