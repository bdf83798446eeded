/**
 * The state store's write-ahead log is checkpointed by a worker thread, not by the commits: the commits
 * leave it to the worker (a high automatic threshold is only a backstop), the worker's checkpoints empty
 * it while the store stays open and writable, and a store closed and opened again reads what was written.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SqliteStore } from '../../src/embedded/sqlite-store.ts';
import type { CheckpointResult } from '../../src/embedded/checkpointer.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** About one 4 KiB page per row, so that 3,000 rows make a log of about 3,000 pages. */
const snapshot = (n: number) => ({
  machine: 'model.v2',
  snapshot: { value: 'healthy', context: { n, padding: 'x'.repeat(3000) } },
});
const MiB = 1024 * 1024;

async function writeRows(store: SqliteStore, from: number, count: number, revisions: Map<string, number>) {
  const actors = Array.from({ length: count }, (_, i) => {
    const key = `m${(from + i) % 3000}`;
    return { kind: 'model' as const, key, snapshot: snapshot(from + i), revision: revisions.get(key) ?? 0 };
  });
  const written = await store.commit({ actors, outbox: [], history: [] });
  actors.forEach((a, i) => revisions.set(a.key, written[i]!));
}

describe('background checkpoint', () => {
  it('commits do not checkpoint; the worker does, while the store is in use; reopening reads it all', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-ckpt-'));
    dirs.push(dir);
    const path = join(dir, 'warden.db');
    const results: CheckpointResult[] = [];
    // Slow enough that the first commits accumulate in the log before any checkpoint.
    const store = new SqliteStore(path, {
      backgroundCheckpoint: { everyMs: 50, onCheckpoint: (r) => results.push(r) },
    });
    const revisions = new Map<string, number>();
    for (let i = 0; i < 3000; i += 250) await writeRows(store, i, 250, revisions);
    await vi.waitFor(
      () => {
        const last = results.at(-1);
        expect(last).toBeDefined();
        expect(last!.busy).toBe(0);
        expect(last!.log).toBeGreaterThan(0);
        expect(last!.checkpointed).toBe(last!.log);
      },
      { timeout: 10_000, interval: 20 },
    );
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(0);
    // Still writable after the worker's checkpoints.
    await writeRows(store, 3000, 10, revisions);
    await store.close();
    const again = new SqliteStore(path, { backgroundCheckpoint: false });
    const row = again.peekActor('model', 'm9');
    expect(row?.snapshot).toEqual(snapshot(3009));
    expect(row?.revision).toBe(revisions.get('m9'));
    await again.close();
  });

  // The log's file keeps the largest size it reached: SQLite's threshold of 1,000 pages (4 MiB) bounds it
  // when the commits checkpoint; without them, 3,000 pages of commits make it about 12 MiB.
  for (const background of [true, false]) {
    it(`${background ? 'with' : 'without'} the worker, the commits ${background ? 'leave the log to it' : 'checkpoint it'}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'warden-ckpt-'));
      dirs.push(dir);
      const path = join(dir, 'warden.db');
      const store = new SqliteStore(path, {
        backgroundCheckpoint: background && { everyMs: 3_600_000 },
      });
      const revisions = new Map<string, number>();
      for (let i = 0; i < 3000; i += 250) await writeRows(store, i, 250, revisions);
      const size = statSync(`${path}-wal`).size;
      if (background) expect(size).toBeGreaterThan(8 * MiB);
      else expect(size).toBeLessThan(8 * MiB);
      await store.close();
    });
  }
});

describe('the checkpointer and the process', () => {
  it('never keeps a process alive: one that opens a store and never closes it still exits', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-ckpt-exit-'));
    dirs.push(dir);
    const store = new URL('../../src/embedded/sqlite-store.ts', import.meta.url).pathname;
    const script = join(dir, 'open-and-leave.ts');
    writeFileSync(
      script,
      `import { SqliteStore } from ${JSON.stringify(store)};
new SqliteStore(${JSON.stringify(join(dir, 'w.db'))}, { backgroundCheckpoint: { onError: () => undefined } });
console.log('opened');
`,
    );
    const child = spawnSync(process.execPath, ['--import', 'tsx', script], {
      timeout: 20_000,
      encoding: 'utf8',
    });
    expect(child.error).toBeUndefined(); // a timeout would be ETIMEDOUT here
    expect(child.stdout).toContain('opened');
    expect(child.status).toBe(0);
  });
});
