import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AlertLedger, DeliveryRecord } from './ledger.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS alert_deliveries (
  id TEXT PRIMARY KEY, target TEXT NOT NULL, alert TEXT NOT NULL, attempts INTEGER NOT NULL,
  due_at INTEGER NOT NULL, status TEXT NOT NULL, problem TEXT, updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_deliveries_pending ON alert_deliveries (status, due_at);
`;

/** Finished deliveries are kept this long (a replayed alert inside it is recognised), then removed. */
const KEEP_FINISHED_MS = 7 * 24 * 3600_000;

interface Row {
  id: string;
  target: string;
  alert: string;
  attempts: number;
  due_at: number;
  status: DeliveryRecord['status'];
  problem: string | null;
}

const toRecord = (row: Row): DeliveryRecord => ({
  id: row.id,
  target: row.target,
  alert: JSON.parse(row.alert) as DeliveryRecord['alert'],
  attempts: row.attempts,
  dueAt: row.due_at,
  status: row.status,
  problem: row.problem,
});

/**
 * The embedded mode's alert ledger: a table in its own SQLite file beside warden.db, written before an
 * attempt's result is acted on, so that what was pending at a crash is delivered after the restart.
 */
export class SqliteAlertLedger implements AlertLedger {
  private readonly db: Database.Database;
  private readonly statements;

  constructor(path: string, now: number) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
    this.statements = {
      get: this.db.prepare<[string], Row>('SELECT * FROM alert_deliveries WHERE id = ?'),
      put: this.db.prepare(
        `INSERT INTO alert_deliveries (id, target, alert, attempts, due_at, status, problem, updated_at)
         VALUES (@id, @target, @alert, @attempts, @due_at, @status, @problem, @updated_at)
         ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, due_at = excluded.due_at,
           status = excluded.status, problem = excluded.problem, updated_at = excluded.updated_at`,
      ),
      pending: this.db.prepare<[], Row>(
        "SELECT * FROM alert_deliveries WHERE status = 'pending' ORDER BY due_at, id",
      ),
      prune: this.db.prepare("DELETE FROM alert_deliveries WHERE status != 'pending' AND updated_at < ?"),
    };
    this.statements.prune.run(now - KEEP_FINISHED_MS);
  }

  async get(id: string): Promise<DeliveryRecord | null> {
    const row = this.statements.get.get(id);
    return row ? toRecord(row) : null;
  }

  async put(record: DeliveryRecord): Promise<void> {
    this.putNow(record);
  }

  /** Synchronous: the bus handler stores the new deliveries before it returns. */
  putNow(record: DeliveryRecord, now = Date.now()): void {
    this.statements.put.run({
      id: record.id,
      target: record.target,
      alert: JSON.stringify(record.alert),
      attempts: record.attempts,
      due_at: record.dueAt,
      status: record.status,
      problem: record.problem,
      updated_at: now,
    });
  }

  getNow(id: string): DeliveryRecord | null {
    const row = this.statements.get.get(id);
    return row ? toRecord(row) : null;
  }

  /** Every pending delivery, soonest first. */
  pending(): DeliveryRecord[] {
    return this.statements.pending.all().map(toRecord);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
