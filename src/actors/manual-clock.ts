import type { Clock } from './ports.ts';

interface Timer {
  readonly id: number;
  readonly at: number;
  readonly fn: () => void;
}

export interface ManualClockOptions {
  /**
   * When a timer really fires, relative to its deadline: negative fires it early (as Node's setTimeout
   * does, by a millisecond or so, by the wall clock), positive late. Given the timer's delay as it was set.
   */
  readonly skew?: (delayMs: number) => number;
}

/**
 * A clock that moves only when told. Tests and the demo advance it; due timers fire in deadline order.
 */
export class ManualClock implements Clock {
  private current: number;
  private timers: Timer[] = [];
  private nextId = 1;
  private readonly skew: (delayMs: number) => number;

  constructor(start = Date.UTC(2026, 0, 1), options: ManualClockOptions = {}) {
    this.current = start;
    this.skew = options.skew ?? (() => 0);
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const delay = Math.max(ms, 0);
    // Never before now: a timer fires at the earliest when it is set.
    const timer = {
      id: this.nextId++,
      at: Math.max(this.current, this.current + delay + this.skew(delay)),
      fn,
    };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.current = Math.max(this.current, due.at);
      due.fn();
    }
    this.current = target;
  }

  /** When the soonest timer falls due (null: none set); tests advance to it to settle between timers. */
  nextDue(): number | null {
    let soonest: number | null = null;
    for (const t of this.timers) if (soonest === null || t.at < soonest) soonest = t.at;
    return soonest;
  }

  pendingTimers(): number {
    return this.timers.length;
  }
}
