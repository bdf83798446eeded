/**
 * The embedded mode's input journal: every input the service took (promotions and evaluations, as they
 * arrived), with the time its model saw it, in the service's SQLite file (table `input_journal`, its own
 * connection; the state store's tables are not touched). NATS mode keeps the WARDEN_IN stream instead.
 * The policy lab (`warden replay`, the HTTP replay job) reads it back.
 *
 * Appends are written in one transaction per event-loop tick, after the input was committed: the journal
 * is a record for analysis, not state; a crash may lose the inputs of the last tick from it (never from the
 * service's state). Retention: entries older than `retentionDays`, and beyond the newest `maxEntries`, are
 * pruned as new ones are written.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { BACKSTOP_CHECKPOINT_PAGES } from './checkpointer.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS input_journal (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS input_journal_by_time ON input_journal (at);
`;

export interface JournalEntry {
  readonly seq: number;
  readonly at: number;
  readonly kind: string;
  /** The payload as it arrived, as JSON text. */
  readonly payload: string;
}

export interface JournalRetention {
  /** Entries older than this many days are pruned; null keeps them by age. */
  readonly retentionDays: number | null;
  /** At most this many entries are kept (the newest). */
  readonly maxEntries: number;
}

/** Pruning runs once every this many flushes (and on open), at a small amortised cost. */
const PRUNE_EVERY = 64;

export class InputJournal {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private pending: Array<[number, string, string]> = [];
  private scheduled = false;
  private flushes = 0;

  constructor(
    readonly path: string,
    private readonly retention: JournalRetention = { retentionDays: 30, maxEntries: 1_000_000 },
    private readonly now: () => number = Date.now,
    options: { readonly?: boolean } = {},
  ) {
    if (path !== ':memory:' && !options.readonly) mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, options.readonly ? { readonly: true, fileMustExist: true } : {});
    if (!options.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      // The state store's worker checkpoints the shared log; the journal's flushes only as a backstop.
      this.db.pragma(`wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_PAGES}`);
      this.db.exec(SCHEMA);
      this.insert = this.db.prepare('INSERT INTO input_journal (at, kind, payload) VALUES (?, ?, ?)');
      this.prune();
    } else {
      this.insert = undefined as unknown as Database.Statement;
    }
  }

  /** Opens a journal to read it (the replay), never to write; null when the file has no journal. */
  static openToRead(path: string): InputJournal | null {
    const journal = new InputJournal(path, undefined, undefined, { readonly: true });
    const table = journal.db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'input_journal'")
      .get();
    if (!table) {
      journal.close();
      return null;
    }
    return journal;
  }

  /** Records one accepted input; written with the others of this tick. */
  append(kind: string, at: number, payload: unknown): void {
    this.pending.push([at, kind, JSON.stringify(payload) ?? 'null']);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Writes what was appended (also called on close). */
  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0 || !this.db.open) return;
    const rows = this.pending;
    this.pending = [];
    this.db.transaction(() => {
      for (const row of rows) this.insert.run(row[0], row[1], row[2]);
    })();
    if (++this.flushes % PRUNE_EVERY === 0) this.prune();
  }

  /** Applies the retention now. */
  prune(): void {
    if (this.retention.retentionDays !== null) {
      this.db
        .prepare('DELETE FROM input_journal WHERE at < ?')
        .run(this.now() - this.retention.retentionDays * 86_400_000);
    }
    const last = this.db.prepare('SELECT MAX(seq) AS seq FROM input_journal').get() as { seq: number | null };
    if (last.seq !== null) {
      this.db.prepare('DELETE FROM input_journal WHERE seq <= ?').run(last.seq - this.retention.maxEntries);
    }
  }

  /** Entries in order, optionally from a time (ms) on and up to a sequence number (`lastSeq()` earlier). */
  *entries(from = 0, through = Number.MAX_SAFE_INTEGER): Generator<JournalEntry> {
    yield* this.db
      .prepare<[number, number], JournalEntry>(
        'SELECT seq, at, kind, payload FROM input_journal WHERE at >= ? AND seq <= ? ORDER BY seq',
      )
      .iterate(from, through);
  }

  count(from = 0, through = Number.MAX_SAFE_INTEGER): number {
    return (
      this.db
        .prepare('SELECT COUNT(*) AS n FROM input_journal WHERE at >= ? AND seq <= ?')
        .get(from, through) as { n: number }
    ).n;
  }

  /** The sequence number of the newest entry (0: none). */
  lastSeq(): number {
    const last = this.db.prepare('SELECT MAX(seq) AS seq FROM input_journal').get() as { seq: number | null };
    return last.seq ?? 0;
  }

  close(): void {
    if (!this.db.open) return;
    if (!this.db.readonly) this.flush();
    this.db.close();
  }
}
