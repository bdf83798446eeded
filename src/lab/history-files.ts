/**
 * Histories on disk, read in chunks: a replay holds a chunk of its history at a time, never the whole of it,
 * so a month of inputs replays in the memory of an hour's (a history read whole would also stop at V8's
 * longest string, about 512 MiB). Every thread of a parallel replay reads the file itself.
 *
 * Histories that do not start as a file (the WARDEN_IN stream, standard input) are spooled to one first, in
 * a temporary directory the caller removes (`TemporaryHistory`).
 */
import {
  closeSync,
  createWriteStream,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { pipeline } from 'node:stream/promises';
import type { JournalEntry } from '../embedded/input-journal.ts';
import { linesOf } from './sources.ts';

/** How much of a file a replay reads at a time (1 MiB). */
export const CHUNK_BYTES = 1 << 20;

/**
 * A file's text, chunk by chunk (UTF-8; a character split between two reads is decoded whole), up to its
 * first `bytes` (what it held when the replay started: every thread reads the same history even while a
 * writer appends to the file).
 */
export function* fileChunks(
  path: string,
  bytes: number = Number.MAX_SAFE_INTEGER,
  chunkBytes: number = CHUNK_BYTES,
): Generator<string> {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(chunkBytes);
    const decoder = new StringDecoder('utf8');
    for (let left = bytes; left > 0;) {
      const n = readSync(fd, buffer, 0, Math.min(chunkBytes, left), null);
      if (n === 0) break;
      left -= n;
      const text = decoder.write(buffer.subarray(0, n));
      if (text !== '') yield text;
    }
    const last = decoder.end();
    if (last !== '') yield last;
  } finally {
    closeSync(fd);
  }
}

/** How many lines the first `bytes` of a file hold (line breaks, plus a last line without one). */
export function countFileLines(path: string, bytes: number = Number.MAX_SAFE_INTEGER): number {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let lines = 0;
    let last = 0x0a;
    for (let left = bytes; left > 0;) {
      const n = readSync(fd, buffer, 0, Math.min(CHUNK_BYTES, left), null);
      if (n === 0) break;
      left -= n;
      for (let i = buffer.indexOf(0x0a); i >= 0 && i < n; i = buffer.indexOf(0x0a, i + 1)) lines++;
      last = buffer[n - 1]!;
    }
    return last === 0x0a ? lines : lines + 1;
  } finally {
    closeSync(fd);
  }
}

/** The name of this process's spool directories start with this (the process id tells whose they are). */
export const SPOOL_PREFIX = `warden-replay-${process.pid}-`;
const SPOOL_NAME = /^warden-replay-(\d+)-/;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the spool directories of processes that are gone (a replay interrupted by a signal or killed
 * leaves its spool behind); those of running processes are theirs. Best effort.
 */
export function removeAbandonedSpools(dir: string = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const pid = SPOOL_NAME.exec(name)?.[1];
    if (pid === undefined || isRunning(Number(pid))) continue;
    try {
      rmSync(join(dir, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // Someone else's, or already gone.
    }
  }
  return removed;
}

/**
 * A directory of its own under the system's temporary one, for spooled histories; `remove()` when done.
 * Making one first removes the spools of processes that are gone.
 */
export class TemporaryHistory {
  readonly dir: string;

  constructor(parent: string = tmpdir()) {
    removeAbandonedSpools(parent);
    this.dir = mkdtempSync(join(parent, SPOOL_PREFIX));
  }

  file(name: string): string {
    return join(this.dir, name);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Writes lines to a file, buffered (one write per 1 MiB). */
class LineWriter {
  private readonly fd: number;
  private pending: string[] = [];
  private size = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }

  write(line: string): void {
    this.pending.push(line);
    this.size += line.length + 1;
    if (this.size >= CHUNK_BYTES) this.flush();
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    writeSync(this.fd, `${this.pending.join('\n')}\n`);
    this.pending = [];
    this.size = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

/**
 * Numbered entries (the WARDEN_IN stream) spooled to `path`, one a line as `[seq, at, kind, payload]`;
 * returns how many. Read back with `spooledEntries`.
 */
export async function spoolEntries(
  entries: AsyncIterable<JournalEntry> | Iterable<JournalEntry>,
  path: string,
): Promise<number> {
  const out = new LineWriter(path);
  let n = 0;
  try {
    for await (const e of entries) {
      out.write(JSON.stringify([e.seq, e.at, e.kind, e.payload]));
      n++;
    }
  } finally {
    out.close();
  }
  return n;
}

/** The entries `spoolEntries` wrote, in order, read chunk by chunk. */
export function* spooledEntries(path: string): Generator<JournalEntry> {
  for (const line of linesOf(fileChunks(path))) {
    if (line === '') continue; // after the last line break
    const [seq, at, kind, payload] = JSON.parse(line as string) as [number, number, string, string];
    yield { seq, at, kind, payload };
  }
}

/** A stream (standard input) copied to `path` as it comes. */
export async function spoolStream(input: NodeJS.ReadableStream, path: string): Promise<void> {
  await pipeline(input, createWriteStream(path));
}
