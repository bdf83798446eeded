export interface EventuallyOptions {
  /** Give up after this long; the last failure is rethrown with the elapsed time. */
  readonly timeoutMs?: number;
  /** Pause between attempts. */
  readonly intervalMs?: number;
}

/**
 * Retries `fn` until it returns without throwing, within a bounded time. Tests assert on what the system
 * did (an event seen, a KV entry written) instead of sleeping "long enough" on the wall clock.
 */
export async function eventually<T>(fn: () => T | Promise<T>, options: EventuallyOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 25;
  const started = Date.now();
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      const elapsed = Date.now() - started;
      if (elapsed >= timeoutMs) {
        const message = error instanceof Error ? error.message : String(error);
        throw new Error(`eventually: still failing after ${elapsed} ms: ${message}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}
