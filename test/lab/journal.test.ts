import { afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { InputJournal } from '../../src/embedded/input-journal.ts';
import { SqliteStore } from '../../src/embedded/sqlite-store.ts';
import { parseConfig } from '../../src/config/load.ts';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { createWarden } from '../../src/warden.ts';
import { sequenced } from '../../src/lab/sources.ts';
import { replay } from '../../src/lab/replay.ts';
import { historyItems, historySize, journalData } from '../../src/lab/parallel.ts';
import { makeDataDir } from '../support/test-warden.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const tempDb = async () => {
  const dir = await makeDataDir();
  dirs.push(dir);
  return join(dir, 'warden.db');
};
const DAY = 86_400_000;

describe('the embedded input journal', () => {
  it('writes the inputs of one tick together, beside the state store in the same file', async () => {
    const path = await tempDb();
    const store = new SqliteStore(path);
    const journal = new InputJournal(path);
    journal.append('promotion', 1000, { model_id: 'm', version: 'v1' });
    journal.append('evaluation', 2000, { model_id: 'm', games_played: 10 });
    expect(journal.count()).toBe(0); // not yet: written with the rest of the tick
    await new Promise((resolve) => setImmediate(resolve));
    expect([...journal.entries()]).toEqual([
      { seq: 1, at: 1000, kind: 'promotion', payload: '{"model_id":"m","version":"v1"}' },
      { seq: 2, at: 2000, kind: 'evaluation', payload: '{"model_id":"m","games_played":10}' },
    ]);
    // The store's own tables are there and untouched.
    expect(await store.loadActors('model')).toEqual([]);
    journal.close();
    await store.close();
    const reader = InputJournal.openToRead(path)!;
    expect(reader.count()).toBe(2);
    expect([...reader.entries(1500)].map((e) => e.seq)).toEqual([2]);
    reader.close();
  });

  it('a replay reads the journal as it was when it started, while the service goes on writing', async () => {
    const path = await tempDb();
    const journal = new InputJournal(path);
    for (let i = 0; i < 3; i++) journal.append('evaluation', 1000 * (i + 1), { i });
    journal.flush();
    const data = journalData(path, 2000)!;
    expect(data).toEqual({ format: 'journal', path, from: 2000, through: 3 });
    journal.append('evaluation', 5000, { i: 3 });
    journal.flush();
    expect(historySize(data)).toBe(2);
    expect([...historyItems(data)].map((item) => ('payload' in item ? item.payload : item))).toEqual([
      { i: 1 },
      { i: 2 },
    ]);
    journal.close();
    expect(() => journalData(join(path, '..', 'nothing.db'))).toThrow(/unable to open database file/);
  });

  it('keeps entries by age and by count, and the replay reports the gap pruning leaves', async () => {
    const path = await tempDb();
    let now = 100 * DAY;
    const journal = new InputJournal(path, { retentionDays: 30, maxEntries: 5 }, () => now);
    // 40, 35, 30, 25, 20, 15, 10 and 5 days old.
    for (let i = 0; i < 8; i++) journal.append('evaluation', now - (40 - 5 * i) * DAY, { i });
    journal.flush();
    journal.prune();
    // Older than 30 days: the first two go; of the six left, the newest five stay.
    const kept = [...journal.entries()];
    expect(kept.map((e) => JSON.parse(e.payload).i)).toEqual([3, 4, 5, 6, 7]);
    now += 1;
    for (let i = 0; i < 10; i++) journal.append('evaluation', now, { j: i });
    journal.flush();
    journal.prune();
    expect(journal.count()).toBe(5);
    journal.append('evaluation', now, { j: 'after' });
    journal.flush();
    const entries = [...journal.entries()];
    journal.close();
    // A hole in the sequence in the middle is a gap; pruning from the start is not.
    const withHole = entries.filter((_, i) => i !== 2);
    const items = [...sequenced(withHole, 'journal')];
    const gaps = items.filter((i) => 'problem' in i);
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({ level: 'warning' });
    expect((gaps[0] as { problem: string }).problem).toMatch(
      /^sequence: expected journal entry \d+, received \d+ \(a gap of 1: pruned or deleted inputs are missing from the replay\)$/,
    );
    const run = replay(parseConfig({}), items);
    // Evaluations of a model never promoted in the history: each reported, none stops the replay.
    expect(run.issues.filter((i) => i.level === 'skipped')).toHaveLength(withHole.length);
  });

  it('is off with journal.enabled: false, and a journal-less file cannot be replayed', async () => {
    const dir = await makeDataDir();
    dirs.push(dir);
    const warden = await createWarden(parseConfig({ dataDir: dir, journal: { enabled: false } }), {
      clock: new ManualClock(),
    });
    expect(warden.journal).toBeNull();
    await warden.promote({ model_id: 'm', version: 'v1' });
    await warden.stop();
    expect(InputJournal.openToRead(join(dir, 'warden.db'))).toBeNull();
  });

  it('records what the service took, never what it refused', async () => {
    const dir = await makeDataDir();
    dirs.push(dir);
    const clock = new ManualClock(Date.UTC(2026, 2, 1));
    const warden = await createWarden(parseConfig({ dataDir: dir }), { clock });
    await warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
    clock.advance(60_000);
    await expect(warden.evaluate({ model_id: 'm', games_played: -1 })).rejects.toThrow(/games_played/);
    await expect(warden.evaluate({ model_id: 'ghost', games_played: 10 })).rejects.toThrow(/ghost/);
    await warden.evaluate({ model_id: 'm', current_elo: 1500, games_played: 10, event_id: 'e1' });
    await warden.evaluate({ model_id: 'm', current_elo: 1500, games_played: 10, event_id: 'e1' });
    await warden.stop();
    const journal = InputJournal.openToRead(join(dir, 'warden.db'))!;
    const entries = [...journal.entries()];
    journal.close();
    expect(entries.map((e) => [e.kind, e.at])).toEqual([
      ['promotion', Date.UTC(2026, 2, 1)],
      ['evaluation', Date.UTC(2026, 2, 1) + 60_000],
      ['evaluation', Date.UTC(2026, 2, 1) + 60_000],
    ]);
  });
});
