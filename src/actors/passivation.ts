import type { Clock } from './ports.ts';

/**
 * When to passivate: every actor untouched (no input, command, status query or timer) for `idleMs` is
 * offered to the runtime, which passivates it unless it has work in flight. One sweep timer looks at the
 * resident actors every quarter of the idle time (at least every 10 ms, at most every minute), so an idle
 * actor leaves within 1.25 times the idle time.
 */
export class PassivationPolicy {
  private timer: unknown = null;
  private stopped = true;
  readonly sweepMs: number;

  constructor(
    private readonly clock: Clock,
    readonly idleMs: number,
    /** Passivates what it may among the actors last touched at or before `idleSince`. */
    private readonly sweep: (idleSince: number) => void,
  ) {
    this.sweepMs = Math.min(Math.max(Math.round(idleMs / 4), 10), 60_000);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Whether an actor last touched at `touchedAt` has been idle long enough. */
  idle(touchedAt: number, now = this.clock.now()): boolean {
    return now - touchedAt >= this.idleMs;
  }

  private arm(): void {
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      if (this.stopped) return;
      this.sweep(this.clock.now() - this.idleMs);
      this.arm();
    }, this.sweepMs);
  }
}
