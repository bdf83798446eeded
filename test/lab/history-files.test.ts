/**
 * Histories read chunk by chunk (src/lab/history-files.ts, `jsonLinesOf`): whatever the cuts between
 * chunks, in the middle of a line or of a UTF-8 character, the items are those of the whole text; a line
 * beyond the limit is reported and skipped without stopping the lines after it.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import fc from 'fast-check';
import { jsonLines, jsonLinesOf, linesOf } from '../../src/lab/sources.ts';
import {
  TemporaryHistory,
  countFileLines,
  fileChunks,
  spoolEntries,
  spooledEntries,
} from '../../src/lab/history-files.ts';

function temporary(): TemporaryHistory {
  const spool = new TemporaryHistory();
  onTestFinished(() => spool.remove());
  return spool;
}

/** Lines of a history: inputs, blank lines, broken JSON, non-ASCII text and CRLF endings. */
const lineArb = fc.oneof(
  fc
    .record({
      kind: fc.constantFrom('promotion', 'evaluation', 'other'),
      model_id: fc.string({ unit: 'grapheme', maxLength: 12 }),
      timestamp: fc.oneof(fc.integer({ min: 1, max: 2_000_000_000 }), fc.constant('soon')),
    })
    .map((o) => JSON.stringify(o)),
  fc.constantFrom('', '   ', '{', '[1,2]', 'null', '{"kind":"evaluation"}\r', '"é ✓ 🦊"'),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
);
const textArb = fc
  .array(lineArb, { maxLength: 30 })
  .chain((lines) => fc.record({ text: fc.constant(lines.join('\n')), trailing: fc.boolean() }));

/** `text` cut at `cuts` (positions, any order, repeats allowed). */
function cut(text: string, cuts: number[]): string[] {
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const pieces: string[] = [];
  let start = 0;
  for (const c of at) {
    pieces.push(text.slice(start, c));
    start = c;
  }
  pieces.push(text.slice(start));
  return pieces;
}

describe('a history read in chunks', () => {
  it('gives the items of the whole text, wherever the chunks are cut, a byte order mark or not', () => {
    fc.assert(
      fc.property(
        textArb,
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.boolean(),
        ({ text, trailing }, cuts, bom) => {
          const whole = trailing ? `${text}\n` : text;
          const read = bom ? `\uFEFF${whole}` : whole;
          expect([...linesOf(cut(read, cuts))]).toEqual(whole.split('\n'));
          expect([...jsonLinesOf(cut(read, cuts))]).toEqual([...jsonLines(whole)]);
        },
      ),
      { numRuns: 300 },
    );
    // Only before the first line: elsewhere it is text like any other.
    const promotion = '{"kind":"promotion","model_id":"m","version":"v1","elo":1500,"timestamp":1000000000}';
    expect([...jsonLines(`\uFEFF${promotion}`)]).toEqual([...jsonLines(promotion)]);
    expect([...jsonLines(`${promotion}\n\uFEFF${promotion}`)][1]).toMatchObject({
      line: 2,
      problem: expect.any(String),
    });
  });

  it('reads a file back exactly, with reads that split UTF-8 characters, and counts its lines', () => {
    const spool = temporary();
    fc.assert(
      fc.property(textArb, fc.integer({ min: 1, max: 9 }), ({ text, trailing }, chunkBytes) => {
        const whole = trailing ? `${text}\n` : text;
        const path = spool.file('history.jsonl');
        writeFileSync(path, whole);
        expect([...fileChunks(path, undefined, chunkBytes)].join('')).toBe(whole);
        expect([...jsonLinesOf(fileChunks(path, undefined, chunkBytes))]).toEqual([...jsonLines(whole)]);
        const lines = whole === '' ? 0 : whole.split('\n').length - (whole.endsWith('\n') ? 1 : 0);
        expect(countFileLines(path)).toBe(lines);
      }),
      { numRuns: 200 },
    );
  });

  it('decodes any bytes chunk by chunk as the whole file decodes them, invalid UTF-8 included', () => {
    const spool = temporary();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 7 }), (bytes, chunkBytes) => {
        const path = spool.file('bytes.jsonl');
        writeFileSync(path, bytes);
        expect([...fileChunks(path, undefined, chunkBytes)].join('')).toBe(
          Buffer.from(bytes).toString('utf8'),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('reads a file up to the size it had, while a writer goes on appending to it', () => {
    const spool = temporary();
    fc.assert(
      fc.property(textArb, textArb, fc.integer({ min: 1, max: 9 }), (before, after, chunkBytes) => {
        const path = spool.file('growing.jsonl');
        const first = `${before.text}\n`;
        writeFileSync(path, first);
        const bytes = statSync(path).size;
        appendFileSync(path, `${after.text}\n`);
        expect([...fileChunks(path, bytes, chunkBytes)].join('')).toBe(first);
        expect(countFileLines(path, bytes)).toBe(first.split('\n').length - 1);
      }),
      { numRuns: 100 },
    );
  });

  it('reports a line beyond the limit with its number and length, skips it, and goes on', () => {
    const good = (n: number) =>
      JSON.stringify({ kind: 'promotion', model_id: `m${n}`, version: 'v1', elo: 1500, timestamp: 1e9 + n });
    const long = `{"kind":"evaluation","note":"${'x'.repeat(120)}"}`;
    const text = [good(1), long, good(3), 'y'.repeat(200), good(5)].join('\n');
    for (const pieces of [[text], cut(text, [5, 17, 40, 41, 90, 130, 250]), [...text]]) {
      const items = [...jsonLinesOf(pieces, 100)];
      expect(items).toEqual([
        expect.objectContaining({ line: 1, kind: 'promotion' }),
        {
          line: 2,
          problem: `expected a line of at most 100 characters, received one of ${long.length} (skipped)`,
        },
        expect.objectContaining({ line: 3, kind: 'promotion' }),
        { line: 4, problem: 'expected a line of at most 100 characters, received one of 200 (skipped)' },
        expect.objectContaining({ line: 5, kind: 'promotion' }),
      ]);
    }
    // A last line without a line break, too long, is reported all the same.
    expect([...jsonLinesOf(['z'.repeat(60), 'z'.repeat(60)], 100)]).toEqual([
      { line: 1, problem: 'expected a line of at most 100 characters, received one of 120 (skipped)' },
    ]);
  });

  it('spools numbered entries and reads them back, payloads with line breaks and quotes included', async () => {
    const spool = temporary();
    const entryArb = fc.record({
      seq: fc.integer({ min: 1, max: 2 ** 40 }),
      at: fc.integer({ min: 0, max: 2 ** 45 }),
      kind: fc.string({ unit: 'grapheme', maxLength: 10 }),
      payload: fc.string({ unit: 'grapheme', maxLength: 60 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(entryArb, { maxLength: 40 }), async (entries) => {
        const path = spool.file('entries.spool');
        expect(await spoolEntries(entries, path)).toBe(entries.length);
        expect([...spooledEntries(path)]).toEqual(entries);
      }),
      { numRuns: 100 },
    );
  });

  it('removes the spools a killed replay left behind, and only those', () => {
    const parent = temporary().dir;
    // A process that has exited: its pid is free (until the system reuses it).
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    mkdirSync(join(parent, `warden-replay-${gone}-abc123`));
    writeFileSync(join(parent, `warden-replay-${gone}-abc123`, 'stream.spool'), '[1,2,"x","{}"]\n');
    mkdirSync(join(parent, `warden-replay-${process.pid}-live01`));
    mkdirSync(join(parent, 'unrelated'));
    const spool = new TemporaryHistory(parent);
    expect(readdirSync(parent).sort()).toEqual(
      [`warden-replay-${process.pid}-live01`, basename(spool.dir), 'unrelated'].sort(),
    );
    spool.remove();
    expect(existsSync(spool.dir)).toBe(false);
  });
});
