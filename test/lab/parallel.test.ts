/**
 * Parallel replay (src/lab/parallel.ts): the shards of a history, merged, are exactly the sequential
 * replay, byte for byte, on random histories; and the real worker threads give the same report, or a clear
 * error.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import fc from 'fast-check';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { jsonLines, sequenced } from '../../src/lab/sources.ts';
import { TemporaryHistory, spoolEntries } from '../../src/lab/history-files.ts';
import {
  MAX_ISSUES_LISTED,
  compareRuns,
  mergeShards,
  replay,
  whatIf,
  Replayer,
} from '../../src/lab/replay.ts';
import { formatReport } from '../../src/lab/format.ts';
import { replayParallel, runShard, whatIfParallel, type HistoryData } from '../../src/lab/parallel.ts';
import { shardOf } from '../../src/lab/engine.ts';
import { LIVE, STRICTER, T0 } from './support.ts';

/** Configs with every timer a replay fires: approval deadlines, cooldowns, auto-resume; and config keys. */
const CONFIGS: Config[] = [
  parseConfig({
    ...LIVE,
    cooldownSeconds: 600,
    training: { autoResumeSeconds: 1800 },
    models: { m3: { configKey: 'shared' }, m4: { configKey: 'shared' } },
  }),
  parseConfig({
    ...STRICTER,
    approval: { requireForSevere: true, timeoutSeconds: 900, onTimeout: 'rollback' },
    cooldownSeconds: 120,
    autoRollbackLimit: { max: 2, windowSeconds: 7200 },
    models: { m1: { configKey: 'shared' } },
  }),
  parseConfig({
    detection: { mode: 'threshold', eloDrop: { minor: 5, moderate: 15, severe: 35, critical: 60 } },
    approval: { requireForSevere: true, timeoutSeconds: 300, onTimeout: 'reject' },
    cooldownSeconds: 0,
    training: { autoResumeSeconds: 600 },
  }),
];

const MODELS = ['m0', 'm1', 'm2', 'm3', 'm4', 'res_v2', 'go'];
const KEYS = ['k0', 'k1', 'shared'];

const promotionLine = fc.record({
  kind: fc.constant('promotion'),
  model_id: fc.constantFrom(...MODELS),
  version: fc.constantFrom('v1', 'v2', 'v3', 'v4', 'v5'),
  elo: fc.integer({ min: 1450, max: 1550 }),
  config_key: fc.option(fc.constantFrom(...KEYS), { nil: undefined }),
});

/** Evaluations name their model plainly, with the version folded in (`m1_v2`), or not at all known. */
const evaluationLine = fc
  .record({
    model: fc.constantFrom(...MODELS, 'ghost'),
    version: fc.constantFrom('v1', 'v2', 'v3', 'v4', 'v5'),
    form: fc.constantFrom('plain', 'suffix', 'field'),
    current_elo: fc.integer({ min: 1380, max: 1510 }),
    games_played: fc.constantFrom(50, 400),
  })
  .map(({ model, version, form, current_elo, games_played }) => ({
    kind: 'evaluation',
    model_id: form === 'suffix' ? `${model}_${version}` : model,
    ...(form === 'field' ? { version } : {}),
    current_elo,
    baseline_elo: 1500,
    games_played,
  }));

/** Lines no shard runs: not JSON, not an object, a bad kind or timestamp, a payload that fails validation. */
const badLine = fc.constantFrom(
  'not json',
  '[1, 2]',
  '{"kind":"rollback","model_id":"m0","timestamp":1772323200}',
  '{"kind":"evaluation","model_id":"m0","current_elo":1500,"baseline_elo":1500,"timestamp":"yesterday"}',
  '{"kind":"evaluation","model_id":"m1","current_elo":"high","baseline_elo":1500,"timestamp":1772323200}',
  '{"kind":"evaluation","model_id":7,"current_elo":1500,"baseline_elo":1500,"timestamp":1772323200}',
  '{"kind":"promotion","model_id":"m2","elo":1500,"timestamp":1772323200}',
  '{"kind":"promotion","model_id":"m bad","version":"v1","elo":1500,"timestamp":1772323200}',
  '',
);

/** Steps in seconds: mostly forward (minutes to hours, past timers), sometimes back in time. */
const step = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 900 }) },
  { weight: 2, arbitrary: fc.integer({ min: 900, max: 7200 }) },
  { weight: 1, arbitrary: fc.integer({ min: -1800, max: -1 }) },
);

const historyArb = fc
  .array(
    fc.tuple(
      fc.oneof(
        { weight: 2, arbitrary: promotionLine },
        { weight: 7, arbitrary: evaluationLine },
        { weight: 1, arbitrary: badLine },
      ),
      step,
    ),
    { minLength: 1, maxLength: 160 },
  )
  .map((rows) => {
    let t = T0;
    return rows
      .map(([line, dt]) => {
        t += dt;
        return typeof line === 'string' ? line : JSON.stringify({ ...line, timestamp: t });
      })
      .join('\n');
  });

const json = (x: unknown) => JSON.stringify(x);

/** Every shard of one policy in this thread, merged. */
function sharded(config: Config, data: HistoryData, count: number, until?: number) {
  const shards = Array.from(
    { length: count },
    (_, index) => runShard({ configs: [config], history: data, shard: { index, count }, until })[0]!,
  );
  return mergeShards(shards);
}

describe('parallel replay: shards merged are the sequential replay', () => {
  it('the same runs, byte for byte, for random histories, configs and shard counts', () => {
    fc.assert(
      fc.property(
        historyArb,
        fc.integer({ min: 0, max: CONFIGS.length - 1 }),
        fc.integer({ min: 2, max: 5 }),
        fc.option(fc.integer({ min: 0, max: 6 * 3600 }), { nil: undefined }),
        (text, c, count, extra) => {
          const config = CONFIGS[c]!;
          const until = extra === undefined ? undefined : (T0 + extra) * 1000;
          const sequential = replay(config, jsonLines(text), { until });
          const merged = sharded(config, { format: 'jsonl', text }, count, until);
          expect(json(merged)).toBe(json(sequential));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the same what-if report, live and candidate each sharded', () => {
    fc.assert(
      fc.property(historyArb, fc.integer({ min: 2, max: 4 }), (text, count) => {
        const [live, candidate] = [CONFIGS[0]!, CONFIGS[1]!];
        const expected = whatIf(live, candidate, jsonLines(text), { source: 'h' });
        const data: HistoryData = { format: 'jsonl', text };
        const shards = Array.from({ length: count }, (_, index) =>
          runShard({ configs: [live, candidate], history: data, shard: { index, count }, until: undefined }),
        );
        const runs = [0, 1].map((i) => mergeShards(shards.map((s) => s[i]!)));
        expect(json(compareRuns(runs[0]!, runs[1]!, { source: 'h' }))).toBe(json(expected));
      }),
      { numRuns: 150 },
    );
  });

  it('numbered entries (a spooled stream) with gaps give the same run as the sequential source', async () => {
    const spool = new TemporaryHistory();
    onTestFinished(() => spool.remove());
    await fc.assert(
      fc.asyncProperty(historyArb, fc.integer({ min: 2, max: 4 }), async (text, count) => {
        const entries = text.split('\n').flatMap((line, i) => {
          const seq = 1 + i + (i > 3 ? 2 : 0); // a gap after the fourth entry
          let kind = 'evaluation';
          let at = T0 * 1000;
          try {
            const p = JSON.parse(line);
            kind = String(p.kind);
            if (typeof p.timestamp === 'number') at = p.timestamp * 1000;
          } catch {
            // not JSON: kept as it is, the source reports it
          }
          return [{ seq, at, kind, payload: line }];
        });
        const path = spool.file('entries.spool');
        await spoolEntries(entries, path);
        const data: HistoryData = { format: 'spooled', what: 'stream', path };
        const sequential = replay(CONFIGS[1]!, sequenced(entries, 'stream'));
        expect(json(sharded(CONFIGS[1]!, data, count))).toBe(json(sequential));
      }),
      { numRuns: 100 },
    );
  });

  it('a history of more problems than a report lists: the first ones listed in its order, every one counted', () => {
    // Lines of an unknown kind (reported by the first shard) between evaluations of 30 models, one in three
    // earlier than the one before it (a warning, from the shard that runs its model).
    const lines: string[] = [];
    let t = T0;
    for (let i = 0; i < 30; i++)
      lines.push(
        JSON.stringify({ kind: 'promotion', model_id: `p${i}`, version: 'v1', elo: 1500, timestamp: t }),
      );
    const problems = MAX_ISSUES_LISTED + 10_000;
    for (let i = 0; i < problems; i++) {
      t += 60;
      lines.push(
        i % 10 !== 0
          ? `{"kind":"other","n":${i}}`
          : JSON.stringify({
              kind: 'evaluation',
              model_id: `p${i % 30}`,
              current_elo: 1500,
              baseline_elo: 1500,
              games_played: 400,
              timestamp: i % 30 === 0 ? t - 3600 : t,
            }),
      );
    }
    const text = lines.join('\n');
    const sequential = replay(CONFIGS[0]!, jsonLines(text));
    const { skipped, warnings } = sequential.issueCounts;
    expect(skipped).toBe(problems - Math.ceil(problems / 10));
    expect(warnings).toBe(Math.ceil(problems / 30));
    expect(skipped + warnings).toBeGreaterThan(MAX_ISSUES_LISTED);
    expect(sequential.issues).toHaveLength(MAX_ISSUES_LISTED);
    const listedLines = sequential.issues.map((i) => i.line);
    expect(listedLines).toEqual([...listedLines].sort((a, b) => a - b));
    expect(new Set(sequential.issues.map((i) => i.level))).toEqual(new Set(['skipped', 'warning']));
    for (const count of [2, 3]) {
      expect(json(sharded(CONFIGS[0]!, { format: 'jsonl', text }, count))).toBe(json(sequential));
    }
    const report = compareRuns(sequential, sequential, { source: 'many problems' });
    expect(report.history).toMatchObject({ skipped, warnings });
    expect(report.issues).toHaveLength(MAX_ISSUES_LISTED);
    expect(formatReport(report)).toContain(
      `problems in the history (${skipped + warnings}; the replay went on):`,
    );
    expect(formatReport(report)).toContain(
      `... and ${skipped + warnings - 50} more (--json lists the first ${MAX_ISSUES_LISTED})`,
    );
  });

  it('shards split the config keys between them, and keep a config key to one shard', () => {
    const keys = Array.from({ length: 200 }, (_, i) => `model_${i}`);
    const counts = [0, 0, 0, 0];
    for (const key of keys) counts[shardOf(key, 4)]!++;
    for (const n of counts) expect(n).toBeGreaterThan(25);
    expect(shardOf('shared', 3)).toBe(shardOf('shared', 3));
  });

  it('one shard of one runs everything, as the sequential Replayer does', () => {
    const text = '{"kind":"promotion","model_id":"m0","version":"v1","elo":1500,"timestamp":1772323200}';
    const r = new Replayer(CONFIGS[0]!, { shard: { index: 0, count: 1 } });
    for (const item of jsonLines(text)) r.feed(item);
    expect(json(r.finish())).toBe(json(replay(CONFIGS[0]!, jsonLines(text))));
  });
});

describe('parallel replay: worker threads', () => {
  /** Forty models over twenty config keys, a few of them bad now and then. */
  function fleet(lines: number): string {
    const out: string[] = [];
    let t = T0;
    for (let i = 0; out.length < lines; i++) {
      const m = i % 40;
      t += 30;
      if (i % 997 < 40) {
        out.push(
          JSON.stringify({
            kind: 'promotion',
            model_id: `f${m}`,
            version: `v${i}`,
            elo: 1500,
            config_key: `c${m % 20}`,
            timestamp: t,
          }),
        );
      } else {
        const bad = Math.floor(i / 997) % 4 === 1 && m % 3 === 0;
        out.push(
          JSON.stringify({
            kind: 'evaluation',
            model_id: `f${m}`,
            current_elo: bad ? 1430 : 1500 - (i % 5),
            baseline_elo: 1500,
            games_played: 400,
            timestamp: i % 101 === 0 ? t - 600 : t,
          }),
        );
      }
      if (i % 500 === 0) out.push('not json');
    }
    return out.join('\n');
  }

  it('workers give the report one thread gives', { timeout: 60_000 }, async () => {
    const text = fleet(3000);
    const [live, candidate] = [CONFIGS[0]!, CONFIGS[1]!];
    const expected = whatIf(live, candidate, jsonLines(text), { source: 'fleet' });
    expect(expected.totals.live.rollbacks + expected.totals.candidate.rollbacks).toBeGreaterThan(0);
    expect(expected.issues.length).toBeGreaterThan(0);
    const report = await whatIfParallel(
      live,
      candidate,
      { format: 'jsonl', text },
      { source: 'fleet', workers: 3, minLines: 0 },
    );
    expect(json(report)).toBe(json(expected));
    const allInWorkers = await whatIfParallel(
      live,
      candidate,
      { format: 'jsonl', text },
      { source: 'fleet', workers: 2, minLines: 0, inThisThread: false },
    );
    expect(json(allInWorkers)).toBe(json(expected));
  });

  it('a shard that fails fails the replay with its error, and does not hang', async () => {
    const broken = { format: 'spooled', what: 'stream' } as unknown as HistoryData;
    const options = { workers: 2, minLines: 0, inThisThread: false };
    await expect(replayParallel([CONFIGS[0]!], broken, options)).rejects.toThrow(
      /^replay shard \d of 2 \(a worker thread\) failed: TypeError/,
    );
    await expect(replayParallel([CONFIGS[0]!], broken, { workers: 3, minLines: 0 })).rejects.toThrow(
      /^replay shard \d of 3 \((this|a worker) thread\) failed: TypeError/,
    );
  });
});
