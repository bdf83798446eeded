/**
 * Parallel replay for `warden replay`: the history is replayed by several worker threads at once, each
 * running the machines of one shard of the training configs (src/lab/engine.ts, EngineShard), and the
 * shards' runs merged into exactly the run one thread gives (test/lab/parallel.test.ts checks it on random
 * histories). A config's models and its training actor only act on one another, so a shard is a set of
 * config keys; every worker still reads the whole history (JSON.parse is cheap beside the machines) to keep
 * the same clock, counts and known models as a sequential replay.
 *
 * Each worker is told where the history is (a file, the journal, a spooled stream) and reads it itself,
 * chunk by chunk, so no thread holds the whole history. The service's HTTP replay job does not use this:
 * it stays in the service's thread, in slices (src/lab/jobs.ts), so that a replay never takes every core
 * from the live service.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Config } from '../config/schema.ts';
import {
  compareRuns,
  mergeShards,
  Replayer,
  type ComparisonReport,
  type FailOn,
  type PolicyRun,
  type ShardRun,
} from './replay.ts';
import { jsonLines, jsonLinesOf, sequenced, type SourceItem } from './sources.ts';
import { countFileLines, fileChunks, spooledEntries } from './history-files.ts';
import { InputJournal } from '../embedded/input-journal.ts';
import type { EngineShard } from './engine.ts';

/**
 * A whole history, as the threads of a replay receive it: where to read it, not its contents (except a
 * short text). Each thread reads it chunk by chunk (src/lab/history-files.ts).
 */
export type HistoryData =
  | {
      /** JSON Lines text in memory (a short history: posted, or made by a test). */
      readonly format: 'jsonl';
      readonly text: string;
      /** Inputs before this time (ms) are left out. */
      readonly from?: number | undefined;
    }
  | {
      /** A JSON Lines file: its first `bytes` (its size when the replay started), or all of it. */
      readonly format: 'jsonl-file';
      readonly path: string;
      readonly bytes?: number | undefined;
      readonly from?: number | undefined;
    }
  | {
      /** The embedded input journal (SQLite): its entries from `from` (ms) on, up to `through` (a seq). */
      readonly format: 'journal';
      readonly path: string;
      readonly from: number;
      readonly through: number;
    }
  | {
      /** Numbered entries spooled to a file (the WARDEN_IN stream: see `spoolEntries`). */
      readonly format: 'spooled';
      readonly what: string;
      readonly path: string;
    };

/** The embedded journal at `path` as a HistoryData: what it holds now (entries appended later are not read). */
export function journalData(path: string, from = 0): HistoryData | null {
  const journal = InputJournal.openToRead(path);
  if (!journal) return null;
  try {
    return { format: 'journal', path, from, through: journal.lastSeq() };
  } finally {
    journal.close();
  }
}

/** The items of a HistoryData, in order, as the sequential sources give them. */
export function historyItems(data: HistoryData): Iterable<SourceItem> {
  switch (data.format) {
    case 'jsonl':
      return fromTime(jsonLines(data.text), data.from);
    case 'jsonl-file':
      return fromTime(jsonLinesOf(fileChunks(data.path, data.bytes)), data.from);
    case 'journal':
      return journalItems(data.path, data.from, data.through);
    case 'spooled':
      return sequenced(spooledEntries(data.path), data.what);
    default:
      throw new TypeError(`unknown history format ${JSON.stringify((data as { format?: unknown }).format)}`);
  }
}

function* journalItems(path: string, from: number, through: number): Generator<SourceItem> {
  const journal = InputJournal.openToRead(path);
  if (!journal) throw new Error(`${path} has no input journal`);
  try {
    yield* sequenced(journal.entries(from, through), 'journal');
  } finally {
    journal.close();
  }
}

function fromTime(items: Iterable<SourceItem>, from: number | undefined): Iterable<SourceItem> {
  return from === undefined ? items : after(items, from);
}

function* after(items: Iterable<SourceItem>, from: number): Generator<SourceItem> {
  for (const item of items) if (!('at' in item) || item.at >= from) yield item;
}

/** How many lines (inputs) a history holds, about: what decides whether workers are worth starting. */
export function historySize(data: HistoryData): number {
  switch (data.format) {
    case 'jsonl': {
      let n = 0;
      for (let i = data.text.indexOf('\n'); i >= 0; i = data.text.indexOf('\n', i + 1)) n++;
      return n + 1;
    }
    case 'jsonl-file':
      return countFileLines(data.path, data.bytes);
    case 'spooled':
      return countFileLines(data.path);
    case 'journal': {
      const journal = InputJournal.openToRead(data.path);
      if (!journal) return 0;
      try {
        return journal.count(data.from, data.through);
      } finally {
        journal.close();
      }
    }
    default:
      return 0;
  }
}

/** What a worker is asked: the policies to run over the history, on its shard. */
export interface ShardTask {
  readonly configs: Config[];
  readonly history: HistoryData;
  readonly shard: EngineShard;
  readonly until: number | undefined;
}

export type ShardAnswer =
  { readonly ok: true; readonly runs: ShardRun[] } | { readonly ok: false; readonly error: string };

/** One shard of every policy over the history, side by side in one pass (what a worker does). */
export function runShard(task: ShardTask): ShardRun[] {
  const replayers = task.configs.map((c) => new Replayer(c, { until: task.until, shard: task.shard }));
  for (const item of historyItems(task.history)) {
    for (const r of replayers) r.feed(item);
  }
  return replayers.map((r) => r.finishShard());
}

export interface ParallelOptions {
  /**
   * Threads that replay a shard each (default: the available parallelism): this one and `workers - 1`
   * worker threads (see `inThisThread`); 1 replays in this thread alone.
   */
  readonly workers?: number | undefined;
  readonly until?: number | undefined;
  /** Young generation of each worker (MB); a larger one makes the machines' short-lived objects cheaper. */
  readonly youngGenerationMb?: number | undefined;
  /** Below this many lines, the history is replayed in this thread (starting workers costs more). */
  readonly minLines?: number | undefined;
  /** Run one shard in this thread beside the workers (default true); false: every shard in a worker. */
  readonly inThisThread?: boolean | undefined;
}

/**
 * The young generation a worker gets by default: of 8 to 128 MB, 16 MB cost the least CPU for a what-if
 * replay on the 2-core development machine (docs/performance.md, bench:replay); larger ones were slower.
 */
export const DEFAULT_YOUNG_GENERATION_MB = 16;
/**
 * Below this many lines a history is replayed in one thread. A worker thread costs a fixed 0.4 s or so (its
 * start, its JIT warm-up) and every thread parses the whole history: `warden replay` over 100,000 lines took
 * as long with two threads as with one on the 2-core development machine, for 1.5 times the CPU; over
 * 200,000 lines two were 10 to 20% faster, over 1,000,000 about 1.3 times (docs/performance.md, bench:replay).
 */
export const DEFAULT_MIN_LINES = 200_000;

/**
 * The most threads the default takes: each reads and parses the whole history again, and a replay is one
 * operator's command, not a reason to take every core of a big host.
 */
export const MAX_DEFAULT_WORKERS = 4;

export function defaultWorkers(): number {
  return Math.min(availableParallelism(), MAX_DEFAULT_WORKERS);
}

/**
 * The worker: the compiled .js next to this file (dist/, what the `warden` binary and the image run), or,
 * from the TypeScript sources (tsx, vitest), a small script that registers tsx in the worker first (tsx's
 * `--import` hooks do not reach worker threads on Node 20) and then loads the .ts module.
 */
function workerEntry(): { entry: string | URL; eval: boolean } {
  if (!import.meta.url.endsWith('.ts'))
    return { entry: new URL('./replay-worker.js', import.meta.url), eval: false };
  const target = new URL('./replay-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  return {
    entry: `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(target)}); });`,
    eval: true,
  };
}

/**
 * Every policy in `configs` over the history, by `workers` threads, merged per policy: the runs are exactly
 * those of `replay` in one thread. A worker that fails fails the whole replay with its error (the others
 * are stopped), never a partial result.
 */
export async function replayParallel(
  configs: Config[],
  history: HistoryData,
  options: ParallelOptions = {},
): Promise<PolicyRun[]> {
  const workers = Math.max(1, Math.floor(options.workers ?? defaultWorkers()));
  const minLines = options.minLines ?? DEFAULT_MIN_LINES;
  if (workers === 1 || (minLines > 0 && historySize(history) < minLines)) {
    return runShard({ configs, history, shard: { index: 0, count: 1 }, until: options.until });
  }
  const { entry, eval: evaluate } = workerEntry();
  const young = options.youngGenerationMb ?? DEFAULT_YOUNG_GENERATION_MB;
  // Shard 0 runs in this thread (it has the modules loaded already), unless it must stay free.
  const here = options.inThisThread ?? true;
  const started: Worker[] = [];
  const failed = (index: number, what: string) =>
    new Error(
      `replay shard ${index + 1} of ${workers} (${index === 0 && here ? 'this thread' : 'a worker thread'}) failed: ${what}`,
    );
  const answers = Array.from({ length: here ? workers - 1 : workers }, (_, k) => {
    const index = here ? k + 1 : k;
    const task: ShardTask = { configs, history, shard: { index, count: workers }, until: options.until };
    const worker = new Worker(entry, {
      eval: evaluate,
      workerData: task,
      resourceLimits: { maxYoungGenerationSizeMb: young },
    });
    started.push(worker);
    return new Promise<ShardRun[]>((resolve, reject) => {
      let answered = false;
      worker.once('message', (answer: ShardAnswer) => {
        answered = true;
        if (answer.ok) resolve(answer.runs);
        else reject(failed(index, answer.error));
      });
      worker.once('error', (error) => {
        answered = true;
        reject(failed(index, error.message));
      });
      worker.once('exit', (code) => {
        if (!answered) reject(failed(index, `the worker exited (code ${code}) without a result`));
      });
    });
  });
  const others = Promise.all(answers);
  // Awaited below; a rejection while this thread runs its own shard is not unhandled meanwhile.
  others.catch(() => undefined);
  let shards: ShardRun[][];
  try {
    const own = here ? [runOwn(configs, history, workers, options.until, failed)] : [];
    shards = [...own, ...(await others)];
  } catch (error) {
    await Promise.all(started.map((w) => w.terminate()));
    throw error;
  }
  return configs.map((_, i) => mergeShards(shards.map((runs) => runs[i]!)));
}

function runOwn(
  configs: Config[],
  history: HistoryData,
  count: number,
  until: number | undefined,
  failed: (index: number, what: string) => Error,
): ShardRun[] {
  try {
    return runShard({ configs, history, shard: { index: 0, count }, until });
  } catch (error) {
    throw failed(0, error instanceof Error ? (error.stack ?? error.message) : String(error));
  }
}

/** `whatIf` (src/lab/replay.ts) by several threads: the live and the candidate policies on every shard. */
export async function whatIfParallel(
  live: Config,
  candidate: Config,
  history: HistoryData,
  options: ParallelOptions & { source: string; failOn?: FailOn },
): Promise<ComparisonReport> {
  const [liveRun, candidateRun] = await replayParallel([live, candidate], history, options);
  return compareRuns(liveRun!, candidateRun!, options);
}
