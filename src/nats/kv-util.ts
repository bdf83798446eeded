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
