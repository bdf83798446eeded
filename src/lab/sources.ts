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

/** The first field of a line as exporters write it: compact (JavaScript, jq -c) or spaced (Python). */
const LEADING_KINDS = (['evaluation', 'promotion'] as const).flatMap((kind) => [
  { prefix: `{"kind":"${kind}",`, kind },
  { prefix: `{"kind": "${kind}", `, kind },
]);

/** Whether the text from `i` on starts with a key (a string), after white space: JSON goes on after a comma. */
function nextIsKey(text: string, i: number): boolean {
  while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\r')) i++;
  return text[i] === '"';
}

/**
 * A line whose first field is its kind (`{"kind":"evaluation",...}`, as exporters write it), read without
 * that field: the rest of the text is the payload. Taking a field off a parsed object (`delete`) costs more
 * than the parse and leaves an object slower to read, on every line of a replay. Null when the line is not
 * of that form, is not JSON, or names its kind twice (the whole line is then read as any other, and its last
 * `kind` counts, as JSON.parse has it).
 */
function withoutLeadingKind(text: string): { kind: 'evaluation' | 'promotion'; payload: object } | null {
  for (const { prefix, kind } of LEADING_KINDS) {
    if (!text.startsWith(prefix) || !nextIsKey(text, prefix.length)) continue;
    let payload: unknown;
    try {
      payload = JSON.parse(`{${text.slice(prefix.length)}`);
    } catch {
      return null;
    }
    if (typeof payload !== 'object' || payload === null || 'kind' in payload) return null;
    return { kind, payload };
  }
  return null;
}

/** One line of a JSON Lines history; `line` counts from 1. Blank lines are skipped. */
export function parseHistoryLine(text: string, line: number): SourceItem | null {
  if (text.trim() === '') return null;
  const fast = withoutLeadingKind(text);
  if (fast !== null) return recorded(fast.kind, fast.payload as Record<string, unknown>, line);
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
  return recorded(kind, payload, line);
}

function recorded(
  kind: 'evaluation' | 'promotion',
  payload: Record<string, unknown>,
  line: number,
): SourceItem {
  const at = timestampMs(payload.timestamp);
  if (typeof at === 'string') return { line, problem: at };
  return { kind, at, payload, line };
}

/**
 * The longest line a JSON Lines history may hold, in characters (1 MiB): far above any input payload, and
 * low enough that a file without line breaks (or a hostile one) is reported and skipped line by line
 * instead of being gathered whole in memory.
 */
export const MAX_LINE_CHARS = 1 << 20;

/** Every line of a JSON Lines text, in order. */
export function jsonLines(text: string): Generator<SourceItem> {
  return jsonLinesOf([text]);
}

/** A line of a text, or the length of a line too long to keep. */
export type LineOrTooLong = string | { readonly tooLong: number };

/**
 * Every line of a text that comes in pieces (a file read chunk by chunk), in order: a line may span
 * pieces; the last line is given even when empty. A line longer than `maxLineChars` is given as its length
 * only, never gathered. A byte order mark before the first line (files saved by some Windows tools) is not
 * part of it.
 */
export function* linesOf(chunks: Iterable<string>, maxLineChars = Infinity): Generator<LineOrTooLong> {
  let partial = '';
  /** Characters of the current line dropped so far (it is too long), or 0. */
  let dropped = 0;
  let first = true;
  for (const chunk of chunks) {
    let start = first && chunk.charCodeAt(0) === 0xfeff ? 1 : 0;
    if (chunk !== '') first = false;
    for (let end = chunk.indexOf('\n', start); end >= 0; end = chunk.indexOf('\n', start)) {
      if (dropped > 0) {
        yield { tooLong: dropped + end - start };
        dropped = 0;
      } else {
        const text = partial === '' ? chunk.slice(start, end) : partial + chunk.slice(start, end);
        partial = '';
        yield text.length > maxLineChars ? { tooLong: text.length } : text;
      }
      start = end + 1;
    }
    const rest = chunk.length - start;
    if (dropped > 0) dropped += rest;
    else if (partial.length + rest > maxLineChars) {
      dropped = partial.length + rest;
      partial = '';
    } else if (rest > 0) partial += chunk.slice(start);
  }
  yield dropped > 0 ? { tooLong: dropped } : partial;
}

/**
 * Every line of a JSON Lines history that comes in pieces, in order. A line longer than `maxLineChars` is
 * reported and skipped without being kept.
 */
export function* jsonLinesOf(
  chunks: Iterable<string>,
  maxLineChars: number = MAX_LINE_CHARS,
): Generator<SourceItem> {
  let line = 0;
  for (const text of linesOf(chunks, maxLineChars)) {
    line++;
    if (typeof text !== 'string') {
      yield {
        line,
        problem: `expected a line of at most ${maxLineChars.toLocaleString('en-US')} characters, received one of ${text.tooLong.toLocaleString('en-US')} (skipped)`,
      };
      continue;
    }
    const item = parseHistoryLine(text, line);
    if (item) yield item;
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
