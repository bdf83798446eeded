import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { WardenError } from '../domain/errors.ts';

/** The lock file beside the state (`<dataDir>/warden.lock`). */
const LOCK_FILE = 'warden.lock';

export interface DataDirLock {
  release(): void;
}

/**
 * One embedded Warden per data directory: a second one on the same directory would run the same actors'
 * timers and effects from copies the first does not see. The lock is SQLite's own file lock on
 * `warden.lock`, held in exclusive locking mode for as long as the service runs: the operating system
 * drops it when the process ends, however it ends (a SIGKILL leaves no stale lock behind).
 */
export function lockDataDir(dataDir: string): DataDirLock {
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'EEXIST' || code === 'ENOTDIR')
      throw new WardenError(
        'invalid_config',
        `the data directory ${dataDir} is not a directory: expected a directory, or a path where one can be made (WARDEN_DATA_DIR, --data-dir or dataDir)`,
      );
    throw error;
  }
  const path = join(dataDir, LOCK_FILE);
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec(
      'CREATE TABLE IF NOT EXISTS holder (id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, since TEXT NOT NULL)',
    );
    // A write takes the exclusive lock, and exclusive locking mode keeps it until the connection closes.
    db.prepare('INSERT OR REPLACE INTO holder (id, pid, since) VALUES (1, ?, ?)').run(
      process.pid,
      new Date().toISOString(),
    );
  } catch (error) {
    db.close();
    if ((error as { code?: unknown }).code === 'SQLITE_BUSY')
      throw new WardenError(
        'unavailable',
        `the data directory ${dataDir} is in use by another Warden process (it holds ${path}): stop it, or give this one another WARDEN_DATA_DIR`,
      );
    throw error;
  }
  return { release: () => db.close() };
}
