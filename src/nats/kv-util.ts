import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KvEntry } from '@nats-io/kv';

/** A revision-checked write lost: someone else wrote the key since it was read. */
export function isWrongRevision(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** A live entry's text, or null for a missing, deleted or purged key. */
export function entryText(entry: KvEntry | null): string | null {
  if (!entry || entry.operation !== 'PUT') return null;
  return entry.string();
}

export const isoTime = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined || !Number.isFinite(ms) ? null : new Date(ms).toISOString();

/**
 * The promise's outcome, or a rejection once `ms` have passed (the work itself goes on, unobserved), unless
 * its answer came in time and only waits to be read. For loops whose steps follow one another: a request
 * sent while NATS was away can go unanswered for the client's whole request timeout (5 s by default), and
 * would hold every later step back that long.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = timerAfterReads(() => reject(new Error(`${what}: no answer from NATS within ${ms} ms`)), ms);
  });
  work.catch(() => undefined); // a late failure after the deadline is not an unhandled rejection
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/**
 * An unref'd timer whose callback runs once the sockets of its turn of the event loop are read. Timers run
 * at the start of a turn, so one that expired while the process was busy (a long batch, a pause of the
 * garbage collector) would otherwise run before an answer that came in time, and take the process's
 * lateness for NATS's. Cleared with clearTimeout before it fires; once fired, its callback still runs.
 */
export function timerAfterReads(fn: () => void, ms: number): NodeJS.Timeout {
  const timer = setTimeout(() => setImmediate(fn), ms);
  timer.unref();
  return timer;
}
