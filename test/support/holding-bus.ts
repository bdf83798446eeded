import type { BusMessage, EventBus, SubscribeOptions, Unsubscribe } from '../../src/actors/ports.ts';
import { MemoryBus } from '../../src/embedded/memory-bus.ts';
import { subjectMatches } from '../../src/embedded/subjects.ts';

/**
 * The embedded bus, plus two things tests need: a log of every published message, and the power to hold
 * messages on some subjects (e.g. the training config's pause acknowledgement) until released.
 */
export class HoldingBus implements EventBus {
  readonly inner = new MemoryBus((error) => {
    throw error;
  });
  readonly log: BusMessage[] = [];
  private held: Array<{ subject: string; payload: unknown }> = [];
  private holding: string[] = [];
  private blocking: string[] = [];

  /** Publishing on these subjects never completes (a connection that hangs, or a process about to die). */
  block(pattern: string): void {
    this.blocking.push(pattern);
  }

  hold(pattern: string): void {
    this.holding.push(pattern);
  }

  async release(pattern: string): Promise<void> {
    this.holding = this.holding.filter((p) => p !== pattern);
    const release = this.held.filter((m) => subjectMatches(pattern, m.subject));
    this.held = this.held.filter((m) => !release.includes(m));
    for (const m of release) await this.inner.publish(m.subject, m.payload);
  }

  heldCount(): number {
    return this.held.length;
  }

  async publish(subject: string, payload: unknown): Promise<void> {
    this.log.push({ subject, data: structuredClone(payload) });
    if (this.blocking.some((p) => subjectMatches(p, subject))) return new Promise<void>(() => {});
    if (this.holding.some((p) => subjectMatches(p, subject))) {
      this.held.push({ subject, payload });
      return;
    }
    await this.inner.publish(subject, payload);
  }

  subscribe(
    pattern: string,
    handler: (message: BusMessage) => Promise<void> | void,
    options?: SubscribeOptions,
  ): Unsubscribe {
    return this.inner.subscribe(pattern, handler, options);
  }

  idle(): Promise<void> {
    return this.inner.idle();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Messages logged since `mark` (an index into the log). */
  since(mark: number): BusMessage[] {
    return this.log.slice(mark);
  }
}
