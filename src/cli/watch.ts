import { RequestFailed } from './exit-codes.ts';

export interface WatchOptions<T> {
  /** One look at Warden (a status request). */
  fetch(): Promise<T>;
  /** The text shown for a result; a new render happens only when this text changes. */
  render(result: T): string;
  write(text: string): void;
  /** Waits between looks; resolves early when `signal` aborts (tests inject their own). */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  readonly intervalMs: number;
  /** Stops after this many renders (scripts, tests); unbounded otherwise, until `signal` aborts. */
  readonly maxRenders?: number | undefined;
  /** Ctrl-C: stops at once, between two looks or during one. */
  readonly signal: AbortSignal;
  /** Clear the terminal before each render (a TTY); otherwise renders are separated by a blank line. */
  readonly clear: boolean;
  /** Only the rendered text, one per change (--json: one JSON document a line). */
  readonly bare?: boolean;
  readonly now?: () => Date;
}

/**
 * `warden status --watch`: looks every interval and renders again when what it would show changed. A
 * failed look (Warden restarting, unreachable) is shown as such and the watch carries on.
 */
export async function watch<T>(options: WatchOptions<T>): Promise<number> {
  const now = options.now ?? (() => new Date());
  let last: string | null = null;
  let renders = 0;
  while (!options.signal.aborted) {
    let text: string;
    try {
      text = options.render(await options.fetch());
    } catch (error) {
      if (!(error instanceof RequestFailed)) throw error;
      text = `warden: ${error.message}`;
    }
    if (options.signal.aborted) break;
    if (text !== last) {
      last = text;
      const stamp = `${now()
        .toISOString()
        .replace(/\.\d{3}Z$/, 'Z')} (every ${options.intervalMs / 1000} s, Ctrl-C stops)`;
      if (options.bare) options.write(`${text}\n`);
      else options.write(`${options.clear ? '\x1b[H\x1b[2J' : renders > 0 ? '\n' : ''}${stamp}\n${text}\n`);
      renders++;
      if (options.maxRenders !== undefined && renders >= options.maxRenders) break;
    }
    await options.sleep(options.intervalMs, options.signal);
  }
  return renders;
}

/** A wall-clock sleep that ends early on abort (the CLI's; tests pass their own). */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
