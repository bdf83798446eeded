/**
 * Where recorded inputs come from: a JSON Lines file (one input payload a line, with `"kind"` and its
 * `timestamp`), the embedded input journal, or the WARDEN_IN stream (src/lab/nats-source.ts). Every source
 * yields inputs in order, and for a line it cannot read, the line's problem instead: bad lines are reported
 * one by one and never stop a replay.
 */
import type { RecordedInput } from './engine.ts';

/** A line a source could not read: where, and what was expected and received. */
export interface SourceProblem {
  readonly line: number;
  readonly problem: string;
  /** `warning`: nothing was skipped (a gap in the sequence); default `skipped`. */
  readonly level?: 'skipped' | 'warning';
}

export type SourceItem = RecordedInput | SourceProblem;

export function isProblem(item: SourceItem): item is SourceProblem {
  return (item as SourceProblem).problem !== undefined;
}

/** The last second of year 9999 (epoch seconds): later times leave no room for deadlines a report can date. */
export const LATEST_TIMESTAMP_SECONDS = 253_402_300_799;
const TIMESTAMP_FORMS = `epoch seconds (a number > 0, at most ${LATEST_TIMESTAMP_SECONDS}: the end of year 9999) or an ISO 8601 date-time with an offset (2026-01-01T00:00:00Z)`;
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

function shown(value: unknown): string {
  const text = typeof value === 'string' ? `"${value}"` : (JSON.stringify(value) ?? String(value));
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** An input's `timestamp` in ms, or what was wrong with it. */
export function timestampMs(value: unknown): number | string {
  if (value === undefined) return `timestamp: required: expected ${TIMESTAMP_FORMS}, received nothing`;
  if (typeof value === 'number' && value > 0 && value <= LATEST_TIMESTAMP_SECONDS)
    return Math.round(value * 1000);
  if (typeof value === 'string' && ISO_WITH_OFFSET.test(value)) {
    const ms = Date.parse(value);
    if (Number.isFinite(ms)) return ms;
  }
  return `timestamp: expected ${TIMESTAMP_FORMS}, received ${shown(value)}`;
}

/** One line of a JSON Lines history; `line` counts from 1. Blank lines are skipped. */
export function parseHistoryLine(text: string, line: number): SourceItem | null {
  if (text.trim() === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return {
      line,
      problem: `expected one JSON object a line, received text that is not JSON (${(error as Error).message}): ${shown(text)}`,
    };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { line, problem: `expected one JSON object a line, received ${shown(value)}` };
  }
  // The parsed object is ours: taking `kind` off it is cheaper than copying the rest.
  const payload = value as Record<string, unknown>;
  const kind = payload.kind;
  delete payload.kind;
  if (kind !== 'promotion' && kind !== 'evaluation') {
    return {
      line,
      problem: `kind: expected "promotion" or "evaluation", received ${kind === undefined ? 'nothing' : shown(kind)}`,
    };
  }
  const at = timestampMs(payload.timestamp);
  if (typeof at === 'string') return { line, problem: at };
  return { kind, at, payload, line };
}

/** Every line of a JSON Lines text, in order. */
export function* jsonLines(text: string): Generator<SourceItem> {
  let start = 0;
  let line = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    line++;
    const item = parseHistoryLine(text.slice(start, end), line);
    if (item) yield item;
    start = end + 1;
  }
}

/**
 * Recorded entries numbered by a sequence (the journal, the stream): each becomes an input, and a jump in
 * the sequence is reported as a gap (entries pruned by retention or deleted) before the entry after it.
 */
export function* sequenced(
  entries: Iterable<{ seq: number; at: number; kind: string; payload: string }>,
  what: string,
): Generator<SourceItem> {
  let expected: number | null = null;
  for (const entry of entries) {
    if (expected !== null && entry.seq !== expected) {
      yield {
        line: entry.seq,
        level: 'warning',
        problem: `sequence: expected ${what} entry ${expected}, received ${entry.seq} (a gap of ${entry.seq - expected}: pruned or deleted inputs are missing from the replay)`,
      };
    }
    expected = entry.seq + 1;
    let payload: unknown;
    try {
      payload = JSON.parse(entry.payload);
    } catch (error) {
      yield {
        line: entry.seq,
        problem: `expected a JSON payload, received text that is not JSON (${(error as Error).message})`,
      };
      continue;
    }
    yield { kind: entry.kind, at: entry.at, payload, line: entry.seq };
  }
}
