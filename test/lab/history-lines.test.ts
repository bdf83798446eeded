/**
 * A line of a JSON Lines history whose first field is its kind is read without parsing that field into the
 * payload (src/lab/sources.ts). Whatever the line, the reading must be the one of the plain rule: parse the
 * whole line, take `kind` off, read the timestamp. fast-check writes lines compact and spaced, with the kind
 * first, later, twice or missing, and with text after the kind that is not JSON.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseHistoryLine, timestampMs, type SourceItem } from '../../src/lab/sources.ts';

/** The plain rule, as the reader had it before its shortcut. */
function plainReading(text: string, line: number): SourceItem | null {
  if (text.trim() === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { line, problem: 'not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { line, problem: 'not an object' };
  const { kind, ...payload } = value as Record<string, unknown>;
  if (kind !== 'promotion' && kind !== 'evaluation') return { line, problem: 'kind' };
  const at = timestampMs(payload.timestamp);
  if (typeof at === 'string') return { line, problem: at };
  return { kind, at, payload, line };
}

/** Problems are compared by what they are about, not by their wording (the plain rule's is shorter). */
function shape(item: SourceItem | null): unknown {
  if (item === null) return null;
  if ('problem' in item) {
    const about = item.problem.startsWith('timestamp')
      ? item.problem
      : item.problem.startsWith('kind')
        ? 'kind'
        : item.problem.includes('not JSON')
          ? 'not JSON'
          : 'not an object';
    return { line: item.line, problem: about };
  }
  return item;
}

const value = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
);
const field = fc.tuple(
  fc.constantFrom(
    'event_id',
    'model_id',
    'current_elo',
    'timestamp',
    'games_played',
    'x',
    'kind',
    '__proto__',
  ),
  value,
);
const kind = fc.constantFrom('evaluation', 'promotion', 'rollback', 7);

/** An object's text with its fields in the order given: compact, or spaced as Python's json.dumps writes it. */
function write(fields: Array<[string, unknown]>, spaced: boolean): string {
  const [sep, colon] = spaced ? [', ', ': '] : [',', ':'];
  return `{${fields.map(([k, v]) => `${JSON.stringify(k)}${colon}${JSON.stringify(v)}`).join(sep)}}`;
}

describe('a history line with its kind first', () => {
  it('reads as the plain rule reads it, whatever the line', () => {
    fc.assert(
      fc.property(
        kind,
        fc.array(field, { maxLength: 6 }),
        fc.option(fc.integer({ min: 1, max: 2_000_000_000 }), { nil: undefined }),
        fc.boolean(),
        fc.constantFrom('first', 'later', 'missing'),
        fc.constantFrom('', ',}', ' 5}', '}}', ' ', ',"kind":"evaluation"}'),
        (k, fields, timestamp, spaced, where, damage) => {
          const rest: Array<[string, unknown]> =
            timestamp === undefined ? fields : [...fields, ['timestamp', timestamp]];
          const all: Array<[string, unknown]> =
            where === 'first' ? [['kind', k], ...rest] : where === 'later' ? [...rest, ['kind', k]] : rest;
          let text = write(all, spaced);
          if (damage !== '') text = text.slice(0, -1) + damage;
          expect(shape(parseHistoryLine(text, 3))).toEqual(shape(plainReading(text, 3)));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('takes the kind off the payload, compact or spaced', () => {
    for (const text of [
      '{"kind":"evaluation","model_id":"m","current_elo":1490,"timestamp":1767225600}',
      '{"kind": "evaluation", "model_id": "m", "current_elo": 1490, "timestamp": 1767225600}',
    ]) {
      expect(parseHistoryLine(text, 1)).toEqual({
        kind: 'evaluation',
        at: 1_767_225_600_000,
        payload: { model_id: 'm', current_elo: 1490, timestamp: 1767225600 },
        line: 1,
      });
    }
  });

  it('a line that names its kind twice counts the last, as JSON does', () => {
    const item = parseHistoryLine('{"kind":"evaluation","model_id":"m","kind":"promotion","timestamp":1}', 1);
    expect(item).toMatchObject({ kind: 'promotion', payload: { model_id: 'm' } });
  });

  it('text after the kind that is not JSON is reported as not JSON', () => {
    for (const text of [
      '{"kind":"evaluation",}',
      '{"kind":"evaluation", 5}',
      '{"kind":"evaluation",,"a":1}',
    ]) {
      expect(parseHistoryLine(text, 9)).toMatchObject({
        line: 9,
        problem: expect.stringContaining('not JSON'),
      });
    }
  });
});
