import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { createWarden } from '../../src/warden.ts';

/** A valid token that appears nowhere else in a snapshot, replaced by each model's id. */
const TEMPLATE = 'zzTemplateModelzz';

/** The model ids written by `persistModels`, in order. */
export const persistedModelId = (i: number): string => `model_${i}`;

/**
 * Writes `count` healthy models (promoted to v1, then evaluated a few times) into the SQLite file of
 * `dataDir`, as Warden itself would have committed them, without sending a million inputs: one model is
 * taken through Warden, and its stored snapshot (and registry pointer) is copied for every other id in one
 * bulk insert. The start-up index is marked built (none of these models has a timer or needs attention).
 */
export async function persistModels(dataDir: string, count: number, config: ConfigInput = {}): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'warden-template-'));
  let snapshot: string;
  try {
    const warden = await createWarden(parseConfig({ ...config, dataDir: scratch }), {
      clock: new ManualClock(),
    });
    await warden.promote({ model_id: TEMPLATE, version: 'v1', elo: 1500 });
    for (let i = 0; i < 3; i++)
      await warden.evaluate({ model_id: TEMPLATE, current_elo: 1500 - i, games_played: 200 });
    await warden.stop();
    const db = new Database(join(scratch, 'warden.db'), { readonly: true });
    snapshot = db
      .prepare<[string], { snapshot: string }>(`SELECT snapshot FROM actors WHERE kind = 'model' AND key = ?`)
      .get(TEMPLATE)!.snapshot;
    db.close();
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  // Opening a Warden once creates the schema (and marks the start-up index built); then the bulk insert.
  const warden = await createWarden(parseConfig({ ...config, dataDir }), { clock: new ManualClock() });
  await warden.stop();
  const db = new Database(join(dataDir, 'warden.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const parts = snapshot.split(TEMPLATE);
  const insert = db.prepare(
    `INSERT INTO actors (kind, key, snapshot, revision, deadline, attention) VALUES ('model', ?, ?, 5, NULL, 0)`,
  );
  const pointer = db.prepare(
    `INSERT INTO registry (model_id, version, since, reason, last_rollback_id) VALUES (?, 'v1', 0, 'promoted', NULL)`,
  );
  const CHUNK = 50_000;
  for (let start = 0; start < count; start += CHUNK) {
    db.transaction(() => {
      for (let i = start; i < Math.min(start + CHUNK, count); i++) {
        const id = persistedModelId(i);
        insert.run(id, parts.join(id));
        pointer.run(id);
      }
    })();
  }
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}
