import type { Clock } from './ports.ts';

interface Entry {
  readonly at: number;
  readonly id: string;
}

/**
 * The next due timer of every actor that is not resident (passivated, or never loaded since the start):
 * a min-heap of (deadline, actor id) behind one platform timer, armed for the earliest deadline. When a
 * deadline is due (never before it, by the clock), `onDue` gets the actor id; the runtime brings the actor
 * back, and the actor's own timer (armed from its committed state) delivers the event.
 *
 * An actor has at most one entry that counts: `set` replaces it and `delete` drops it; outdated heap
 * entries are skipped when they reach the top (lazy deletion), and the heap is rebuilt when they dominate.
 */
export class DeadlineIndex {
  private heap: Entry[] = [];
  private readonly current = new Map<string, number>();
  private timer: { at: number; handle: unknown } | null = null;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly onDue: (id: string) => void,
  ) {}

  get size(): number {
    return this.current.size;
  }

  /** The deadline the index holds for an actor (tests, views). */
  deadlineOf(id: string): number | undefined {
    return this.current.get(id);
  }

  /** The actor's next deadline; null drops it. */
  set(id: string, at: number | null): void {
    if (at === null) {
      this.delete(id);
      return;
    }
    if (this.current.get(id) === at) return;
    this.current.set(id, at);
    this.push({ at, id });
    if (this.heap.length > 2 * this.current.size + 64) this.rebuild();
    this.arm();
  }

  delete(id: string): void {
    if (!this.current.delete(id)) return;
    if (this.current.size === 0) {
      this.heap = [];
      this.disarm();
    }
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private disarm(): void {
    if (this.timer) this.clock.clearTimeout(this.timer.handle);
    this.timer = null;
  }

  /** One platform timer, for the earliest deadline that still counts. */
  private arm(): void {
    if (this.stopped) return;
    const top = this.top();
    if (top === undefined) {
      this.disarm();
      return;
    }
    if (this.timer && this.timer.at === top.at) return;
    this.disarm();
    const at = top.at;
    this.timer = {
      at,
      handle: this.clock.setTimeout(() => this.fire(), Math.max(at - this.clock.now(), 0)),
    };
  }

  private fire(): void {
    this.timer = null;
    if (this.stopped) return;
    const now = this.clock.now();
    const due: string[] = [];
    for (let top = this.top(); top !== undefined && top.at <= now; top = this.top()) {
      this.pop();
      this.current.delete(top.id);
      due.push(top.id);
    }
    // A platform timer that fired early (by the clock the machines read) is simply armed again.
    this.arm();
    for (const id of due) this.onDue(id);
  }

  /** The earliest entry that still counts, after dropping outdated ones from the top. */
  private top(): Entry | undefined {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (this.current.get(top.id) === top.at) return top;
      this.pop();
    }
    return undefined;
  }

  private rebuild(): void {
    this.heap = [...this.current].map(([id, at]) => ({ id, at }));
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= entry.at) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): void {
    const last = this.heap.pop()!;
    if (this.heap.length === 0) return;
    this.heap[0] = last;
    this.down(0);
  }

  private down(start: number): void {
    const heap = this.heap;
    const entry = heap[start]!;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.at < heap[left]!.at ? right : left;
      if (heap[child]!.at >= entry.at) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = entry;
  }
}
