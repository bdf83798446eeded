export interface EventuallyOptions {
  /** Give up after this long; the last failure is rethrown with the elapsed time. */
  readonly timeoutMs?: number;
  /** Pause between attempts. */
  readonly intervalMs?: number;
}

/** However late an attempt starts, it may take this long before it counts as hung. */
const LEAST_ATTEMPT_MS = 1_000;

/**
 * Retries `fn` until it returns without throwing, within a bounded time. Tests assert on what the system
 * did (an event seen, a KV entry written) instead of sleeping "long enough" on the wall clock.
 *
 * An attempt that never settles (an idle() that waits forever) is bounded too: it fails the wait at the
 * deadline with its own message, instead of hanging the test until the runner's timeout says nothing of
 * where it stopped.
 */
export async function eventually<T>(fn: () => T | Promise<T>, options: EventuallyOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 25;
  const started = Date.now();
  for (;;) {
    try {
      return await bounded(fn, Math.max(started + timeoutMs - Date.now(), LEAST_ATTEMPT_MS));
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

/** One attempt: its result, or a rejection once it has been pending for `ms`. */
async function bounded<T>(fn: () => T | Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`an attempt was still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([fn(), hung]);
  } finally {
    clearTimeout(timer);
  }
}
