import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type {
  ActorKind,
  ActorRecord,
  CommitBatch,
  HistoryRecord,
  IndexEntry,
  ModelRegistry,
  OutboxEntry,
  ProductionPointer,
  RollbackRequest,
  StateStore,
  TimelineEntry,
} from '../actors/ports.ts';
import { ConflictError } from '../domain/errors.ts';
import { rollbackOver } from '../domain/registry-pointer.ts';
import { BACKSTOP_CHECKPOINT_PAGES, Checkpointer, type CheckpointResult } from './checkpointer.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS actors (
  kind TEXT NOT NULL, key TEXT NOT NULL, snapshot TEXT NOT NULL, revision INTEGER NOT NULL,
  deadline INTEGER, attention INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, subject TEXT NOT NULL, payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, model_id TEXT NOT NULL, kind TEXT NOT NULL,
  payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actors_start_index ON actors (kind, key) WHERE deadline IS NOT NULL OR attention = 1;
CREATE INDEX IF NOT EXISTS history_by_model ON history (model_id, seq);
CREATE TABLE IF NOT EXISTS timeline (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL, entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timeline_by_actor ON timeline (kind, key, seq);
CREATE TABLE IF NOT EXISTS registry (
  model_id TEXT PRIMARY KEY, version TEXT NOT NULL, since INTEGER NOT NULL, reason TEXT NOT NULL,
  last_rollback_id TEXT
);
`;

/** PRAGMA user_version once the start-up index (actors.deadline, actors.attention) is complete. */
const INDEX_BUILT = 1;

/** Timeline lines kept per actor (the newest); older ones are pruned. */
const TIMELINE_KEEP = 1000;

/**
 * The embedded mode's durable state, in one SQLite file: actor snapshots, the outbox of publications not
 * yet delivered, the rollback history, and the built-in model registry. One transaction per commit, so a
 * snapshot and the events it caused are written together or not at all.
 */
export class SqliteStore implements StateStore, ModelRegistry {
  private readonly db: Database.Database;
  private readonly statements;
  private readonly checkpointer: Checkpointer | null;

  /**
   * `durability: 'process'` (WAL with synchronous=NORMAL): a commit survives a crash of the process; an OS
   * crash or a power loss may lose the last ones. `'power'` (synchronous=FULL): every commit is on disk
   * before it is acknowledged.
   */
  constructor(
    path: string,
    options: {
      durability?: 'process' | 'power';
      /** The write-ahead log is checkpointed by a worker thread (default), not by the commits. */
      backgroundCheckpoint?:
        | boolean
        | {
            everyMs?: number;
            onCheckpoint?: (r: CheckpointResult) => void;
            /** The worker failed a checkpoint or stopped: the commits' backstop takes over. */
            onError?: (message: string) => void;
          };
    } = {},
  ) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    const synchronous = options.durability === 'power' ? 'FULL' : 'NORMAL';
    this.db.pragma(`synchronous = ${synchronous}`);
    // Actors load on demand (passivation, lazy start): keep more of the file's pages at hand (32 MiB).
    this.db.pragma('cache_size = -32768');
    // A file written before the start-up index existed gets its columns; the index is built on first start.
    const columns = this.db
      .prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('actors')`)
      .all();
    if (columns.length === 0) {
      this.db.exec(SCHEMA);
      this.db.pragma(`user_version = ${INDEX_BUILT}`);
    } else {
      if (!columns.some((c) => c.name === 'deadline')) {
        this.db.exec('ALTER TABLE actors ADD COLUMN deadline INTEGER');
        this.db.exec('ALTER TABLE actors ADD COLUMN attention INTEGER NOT NULL DEFAULT 0');
      }
      this.db.exec(SCHEMA);
    }
    this.statements = {
      loadAll: this.db.prepare<[string], { key: string; snapshot: string; revision: number }>(
        'SELECT key, snapshot, revision FROM actors WHERE kind = ?',
      ),
      loadOne: this.db.prepare<[string, string], { snapshot: string; revision: number }>(
        'SELECT snapshot, revision FROM actors WHERE kind = ? AND key = ?',
      ),
      insertActor: this.db.prepare(
        'INSERT INTO actors (kind, key, snapshot, revision, deadline, attention) VALUES (?, ?, ?, 1, ?, ?)',
      ),
      updateActor: this.db.prepare(
        `UPDATE actors SET snapshot = ?, revision = revision + 1, deadline = ?, attention = ?
         WHERE kind = ? AND key = ? AND revision = ?`,
      ),
      startIndex: this.db.prepare<
        [],
        { kind: ActorKind; key: string; deadline: number | null; attention: number }
      >('SELECT kind, key, deadline, attention FROM actors WHERE deadline IS NOT NULL OR attention = 1'),
      countStates: this.db.prepare<[string], { state: string; count: number }>(
        `SELECT json_extract(snapshot, '$.snapshot.value') AS state, count(*) AS count FROM actors
         WHERE kind = ? GROUP BY state`,
      ),
      saveIndex: this.db.prepare('UPDATE actors SET deadline = ?, attention = ? WHERE kind = ? AND key = ?'),
      insertOutbox: this.db.prepare('INSERT OR IGNORE INTO outbox (id, subject, payload) VALUES (?, ?, ?)'),
      pending: this.db.prepare<[number], { id: string; subject: string; payload: string }>(
        'SELECT id, subject, payload FROM outbox ORDER BY seq LIMIT ?',
      ),
      deleteOutbox: this.db.prepare('DELETE FROM outbox WHERE id = ?'),
      insertHistory: this.db.prepare('INSERT INTO history (at, model_id, kind, payload) VALUES (?, ?, ?, ?)'),
      historyAll: this.db.prepare<[number], { at: number; model_id: string; kind: string; payload: string }>(
        'SELECT at, model_id, kind, payload FROM history ORDER BY seq DESC LIMIT ?',
      ),
      historyByModel: this.db.prepare<
        [string, number],
        { at: number; model_id: string; kind: string; payload: string }
      >('SELECT at, model_id, kind, payload FROM history WHERE model_id = ? ORDER BY seq DESC LIMIT ?'),
      insertTimeline: this.db.prepare('INSERT INTO timeline (kind, key, entry) VALUES (?, ?, ?)'),
      timeline: this.db.prepare<[string, string, number], { entry: string }>(
        'SELECT entry FROM timeline WHERE kind = ? AND key = ? ORDER BY seq DESC LIMIT ?',
      ),
      // Keeps the newest TIMELINE_KEEP lines of one actor.
      pruneTimeline: this.db.prepare(
        `DELETE FROM timeline WHERE kind = ? AND key = ? AND seq <= (
           SELECT seq FROM timeline WHERE kind = ? AND key = ? ORDER BY seq DESC LIMIT 1 OFFSET ${TIMELINE_KEEP})`,
      ),
      getPointer: this.db.prepare<
        [string],
        { version: string; since: number; reason: string; last_rollback_id: string | null }
      >('SELECT version, since, reason, last_rollback_id FROM registry WHERE model_id = ?'),
      upsertPointer: this.db.prepare(
        `INSERT INTO registry (model_id, version, since, reason, last_rollback_id) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (model_id) DO UPDATE SET version = excluded.version, since = excluded.since,
           reason = excluded.reason, last_rollback_id = excluded.last_rollback_id`,
      ),
    };
    const background = options.backgroundCheckpoint ?? true;
    if (path !== ':memory:' && background !== false) {
      this.db.pragma(`wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_PAGES}`);
      this.checkpointer = new Checkpointer(path, {
        synchronous,
        ...(typeof background === 'object' ? background : {}),
      });
    } else {
      this.checkpointer = null;
    }
  }

  async loadActors(kind: ActorKind): Promise<ActorRecord[]> {
    return this.statements.loadAll.all(kind).map((row) => ({
      kind,
      key: row.key,
      snapshot: JSON.parse(row.snapshot),
      revision: row.revision,
    }));
  }

  async loadActor(kind: ActorKind, key: string): Promise<ActorRecord | null> {
    return this.peekActor(kind, key);
  }

  peekActor(kind: ActorKind, key: string): ActorRecord | null {
    const row = this.statements.loadOne.get(kind, key);
    return row ? { kind, key, snapshot: JSON.parse(row.snapshot), revision: row.revision } : null;
  }

  *peekActors(kind: ActorKind): Iterable<ActorRecord> {
    for (const row of this.statements.loadAll.iterate(kind)) {
      yield { kind, key: row.key, snapshot: JSON.parse(row.snapshot), revision: row.revision };
    }
  }

  async startIndex(): Promise<IndexEntry[] | null> {
    if (this.db.pragma('user_version', { simple: true }) !== INDEX_BUILT) return null;
    return this.statements.startIndex.all().map((row) => ({
      kind: row.kind,
      key: row.key,
      deadline: row.deadline,
      attention: row.attention === 1,
    }));
  }

  countStates(kind: ActorKind): Map<string, number> {
    return new Map(this.statements.countStates.all(kind).map((row) => [String(row.state), row.count]));
  }

  async saveIndex(entries: readonly IndexEntry[]): Promise<void> {
    this.db.transaction(() => {
      for (const e of entries) this.statements.saveIndex.run(e.deadline, e.attention ? 1 : 0, e.kind, e.key);
      this.db.pragma(`user_version = ${INDEX_BUILT}`);
    })();
  }

  async commit(batch: CommitBatch): Promise<number[]> {
    return this.db.transaction(() => {
      const revisions = batch.actors.map((actor) => {
        const json = JSON.stringify(actor.snapshot);
        const deadline = actor.deadline ?? null;
        const attention = actor.attention ? 1 : 0;
        if (actor.revision === 0) {
          try {
            this.statements.insertActor.run(actor.kind, actor.key, json, deadline, attention);
          } catch (cause) {
            throw new ConflictError(
              `${actor.kind} ${actor.key} was created elsewhere (${(cause as Error).message})`,
            );
          }
          return 1;
        }
        const result = this.statements.updateActor.run(
          json,
          deadline,
          attention,
          actor.kind,
          actor.key,
          actor.revision,
        );
        if (result.changes !== 1)
          throw new ConflictError(`${actor.kind} ${actor.key} changed since revision ${actor.revision}`);
        return actor.revision + 1;
      });
      for (const entry of batch.outbox) {
        this.statements.insertOutbox.run(entry.id, entry.subject, JSON.stringify(entry.payload));
      }
      for (const record of batch.history) {
        this.statements.insertHistory.run(
          record.at,
          record.modelId,
          record.kind,
          JSON.stringify(record.payload),
        );
      }
      for (const line of batch.timeline ?? []) {
        const seq = Number(
          this.statements.insertTimeline.run(line.kind, line.key, JSON.stringify(line)).lastInsertRowid,
        );
        // Pruning now and then keeps each actor's timeline bounded at a small amortised cost.
        if (seq % 64 === 0) this.statements.pruneTimeline.run(line.kind, line.key, line.kind, line.key);
      }
      return revisions;
    })();
  }

  async pendingOutbox(limit: number): Promise<OutboxEntry[]> {
    return this.statements.pending
      .all(limit)
      .map((row) => ({ id: row.id, subject: row.subject, payload: JSON.parse(row.payload) }));
  }

  async markPublished(ids: readonly string[]): Promise<void> {
    this.db.transaction(() => {
      for (const id of ids) this.statements.deleteOutbox.run(id);
    })();
  }

  async history(query: { modelId?: string | undefined; limit: number }): Promise<HistoryRecord[]> {
    const rows =
      query.modelId === undefined
        ? this.statements.historyAll.all(query.limit)
        : this.statements.historyByModel.all(query.modelId, query.limit);
    return rows.map((row) => ({
      at: row.at,
      modelId: row.model_id,
      kind: row.kind as HistoryRecord['kind'],
      payload: JSON.parse(row.payload),
    }));
  }

  async timeline(kind: ActorKind, key: string, limit: number): Promise<TimelineEntry[]> {
    return this.statements.timeline.all(kind, key, limit).map((row) => JSON.parse(row.entry));
  }

  // ModelRegistry: the built-in production pointer.

  async recordPromotion(modelId: string, version: string, at: number, reason: string): Promise<void> {
    this.statements.upsertPointer.run(modelId, version, at, reason, null);
  }

  async rollback(request: RollbackRequest): Promise<void> {
    const pointer = this.statements.getPointer.get(request.modelId);
    const over = rollbackOver(
      pointer
        ? { version: pointer.version, since: pointer.since, rollbackId: pointer.last_rollback_id }
        : null,
      request,
    );
    if (over === 'done') return;
    if (over !== 'apply') throw new Error(over.refused);
    this.statements.upsertPointer.run(
      request.modelId,
      request.toVersion,
      request.at,
      request.reason,
      request.rollbackId,
    );
  }

  async production(modelId: string): Promise<ProductionPointer | null> {
    const row = this.statements.getPointer.get(modelId);
    return row ? { modelId, version: row.version, since: row.since, reason: row.reason } : null;
  }

  async close(): Promise<void> {
    // The worker's connection first: the last one to close checkpoints what is left and removes the log.
    await this.checkpointer?.close();
    if (this.db.open) this.db.close();
  }
}
