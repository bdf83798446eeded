import { closeSync, createReadStream, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { EXIT, CommandFailed } from '../exit-codes.ts';
import { UsageError } from '../sprt.ts';
import type { Config } from '../../config/schema.ts';
import type { FailOn } from '../../lab/replay.ts';
import type { HistoryData } from '../../lab/parallel.ts';
import { LATEST_TIMESTAMP_SECONDS } from '../../lab/sources.ts';

interface ReplayOptions {
  config: string;
  live?: string;
  from?: string;
  until?: string;
  failOn: FailOn;
  json?: boolean;
  workers?: string;
}

/** `--workers`: a whole number from 1 (1: one thread). */
function workersOption(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new UsageError([`--workers: expected a whole number from 1 to 256, received "${value}"`]);
  }
  return n;
}

/** A time option: epoch seconds, an ISO 8601 date-time, or `now`. */
function timeOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value === 'now') return Date.now();
  const seconds = Number(value);
  if (value.trim() !== '' && seconds > 0 && seconds <= LATEST_TIMESTAMP_SECONDS)
    return Math.round(seconds * 1000);
  const ms = Date.parse(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && Number.isFinite(ms)) return ms;
  throw new UsageError([
    `--${name}: expected epoch seconds (at most ${LATEST_TIMESTAMP_SECONDS}), an ISO 8601 date-time (2026-01-01T00:00:00Z) or "now", received "${value}"`,
  ]);
}

/**
 * `warden replay [FILE] --config CANDIDATE`: the candidate configuration and the live one over a recorded
 * history (a JSON Lines file, else the embedded input journal or the WARDEN_IN stream of the live
 * configuration), compared. Exit codes: 0 when the gate passes, 7 (EXIT.differs) when the candidate's
 * rollbacks differ as --fail-on says, 2 for bad usage or a bad configuration, 1 when the history cannot be
 * read or a replay thread failed. By default, a history of 200,000 lines or more is replayed by as many
 * threads as the machine has cores (--workers N: by N threads, whatever its size), each running a shard of
 * the training configs (src/lab/parallel.ts); the report is the one a single thread gives.
 */
export function registerReplayCommand(program: Command): void {
  program
    .command('replay')
    .description(
      'What-if: replay a recorded history through a candidate configuration and the live one, and compare their decisions',
    )
    .argument(
      '[file]',
      'JSON Lines history (one input a line, with "kind" and "timestamp"); default: the live service\'s journal (embedded) or WARDEN_IN stream (NATS)',
    )
    .requiredOption('--config <file>', 'the candidate configuration (YAML or JSON, the service format)')
    .option(
      '--live <file>',
      'the live configuration (default: WARDEN_CONFIG and the environment, as the service reads it)',
    )
    .option(
      '--from <time>',
      'replay inputs from this time on (epoch seconds or ISO 8601; journal and stream)',
    )
    .option('--until <time>', 'run the clock to this time at the end, firing timers due by then (or "now")')
    .addOption(
      new Option('--fail-on <what>', 'which difference in rollbacks exits 7')
        .choices(['any', 'added', 'removed', 'never'])
        .default('any'),
    )
    .option('--json', 'print the report as JSON')
    .option(
      '--workers <n>',
      'threads that replay shards of the history at once (default: as many as cores for a history of 200,000 lines or more, else 1)',
    )
    .action(async (file: string | undefined, options: ReplayOptions) => {
      const { loadConfig } = await import('../../config/load.ts');
      const { readCandidate } = await import('../../lab/candidate.ts');
      const { whatIfParallel, defaultWorkers } = await import('../../lab/parallel.ts');
      const { formatReport } = await import('../../lab/format.ts');
      const from = timeOption('from', options.from);
      const until = timeOption('until', options.until);
      const workers = workersOption(options.workers, defaultWorkers());
      let live: Config;
      let candidate: Config;
      try {
        live = loadConfig(process.env, options.live ?? process.env.WARDEN_CONFIG);
        candidate = readCandidate(options.config);
      } catch (error) {
        throw new UsageError([(error as Error).message]);
      }
      let data: HistoryData;
      let source: string;
      let done: () => void;
      try {
        ({ data, source, done } = await history(file, live, from));
      } catch (error) {
        process.stderr.write(`warden replay: cannot read the history: ${(error as Error).message}\n`);
        throw new CommandFailed(EXIT.failed, 'cannot read the history');
      }
      let report;
      try {
        report = await whatIfParallel(live, candidate, data, {
          source,
          failOn: options.failOn,
          until,
          workers,
          // Starting workers costs more than a short history; an explicit --workers is obeyed.
          minLines: options.workers === undefined ? undefined : 0,
        });
      } catch (error) {
        process.stderr.write(`warden replay: the replay failed: ${(error as Error).message}\n`);
        throw new CommandFailed(EXIT.failed, 'the replay failed');
      } finally {
        done();
      }
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
      if (report.verdict.failed) throw new CommandFailed(EXIT.differs, report.verdict.reason);
    });
}

/**
 * Where the replay's threads read the history: the file itself, the journal itself (as it is now), or a
 * spool in a temporary directory (standard input, the WARDEN_IN stream) that `done` removes.
 */
async function history(
  file: string | undefined,
  live: Config,
  from: number | undefined,
): Promise<{ data: HistoryData; source: string; done: () => void }> {
  const { journalData } = await import('../../lab/parallel.ts');
  const { TemporaryHistory, spoolEntries, spoolStream } = await import('../../lab/history-files.ts');
  const nothing = () => undefined;
  const bytes = file !== undefined && file !== '-' ? regularFileSize(file) : null;
  if (file !== undefined && bytes !== null) {
    // Its size now: a file a writer goes on appending to is read by every thread up to the same byte.
    return { data: { format: 'jsonl-file', path: file, bytes, from }, source: file, done: nothing };
  }
  if (file === undefined && !live.nats.url) {
    const path = join(live.dataDir, 'warden.db');
    const data = journalData(path, from ?? 0);
    if (!data) throw new Error(`${path} has no input journal (is journal.enabled off?)`);
    return { data, source: `input journal in ${path}`, done: nothing };
  }
  const spool = new TemporaryHistory();
  try {
    if (file !== undefined) {
      // Standard input, or a pipe (`<(zcat history.gz)`): read once, here, for every thread.
      const path = spool.file('history.jsonl');
      await spoolStream(file === '-' ? process.stdin : createReadStream(file), path);
      const source = file === '-' ? 'stdin' : file;
      return { data: { format: 'jsonl-file', path, from }, source, done: () => spool.remove() };
    }
    const { inputStreamEntries } = await import('../../lab/nats-source.ts');
    const path = spool.file('stream.spool');
    const { entries, stream } = await inputStreamEntries(live, { from });
    await spoolEntries(entries, path);
    return {
      data: { format: 'spooled', what: 'stream', path },
      source: `NATS stream ${stream}`,
      done: () => spool.remove(),
    };
  } catch (error) {
    spool.remove();
    throw error;
  }
}

/**
 * The size of `file` when it is a regular file (each thread reads it itself), or null for a pipe, which can
 * be read only once. A missing, unreadable or directory path is told here, before any thread starts; a pipe
 * is not opened here (closing it unread would end its writer).
 */
function regularFileSize(file: string): number | null {
  const stat = statSync(file);
  if (stat.isDirectory()) throw new Error(`${file} is a directory, not a JSON Lines file`);
  if (!stat.isFile()) return null;
  closeSync(openSync(file, 'r'));
  return stat.size;
}
