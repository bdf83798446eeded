/**
 * Replay jobs for the HTTP API: a candidate configuration replayed beside the service's own over the
 * recorded history (the embedded journal, the WARDEN_IN stream, or JSON Lines posted with the job), with
 * the same engine and comparison as `warden replay`. One job runs at a time, in slices that leave the event
 * loop to the live service; the newest finished jobs are kept in memory for their reports.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { InputJournal } from '../embedded/input-journal.ts';
import { ConflictError, ValidationError, WardenError } from '../domain/errors.ts';
import { parseInput } from '../domain/validation.ts';
import { parseCandidate } from './candidate.ts';
import { whatIfAsync, type ComparisonReport } from './replay.ts';
import { jsonLines, sequenced, timestampMs, type SourceItem } from './sources.ts';
import { TemporaryHistory, spoolEntries, spooledEntries } from './history-files.ts';

const time = z.union([z.number().positive(), z.iso.datetime({ offset: true })]);

/** The longest JSON Lines history a replay job takes with its request, in characters. */
export const MAX_POSTED_HISTORY_CHARS = 1_000_000;
/**
 * The request body such a history can need (5 MiB): a character is at most 3 bytes of UTF-8 (4 for two
 * UTF-16 units), JSON escaping makes a quote or a newline two, and the candidate configuration comes with it.
 */
export const REPLAY_BODY_LIMIT_BYTES = 5 * 1024 * 1024;

export const ReplayJobRequestSchema = z
  .object({
    /** The candidate: a whole configuration, in the service's configuration format (as JSON). */
    config: z.record(z.string(), z.unknown()),
    /** A JSON Lines history; without it, the service's own recorded history (journal or WARDEN_IN). */
    history: z.string().max(MAX_POSTED_HISTORY_CHARS).optional(),
    /** Inputs from this time on (epoch seconds or ISO 8601); recorded history only. */
    from: time.optional(),
    /** Run the clock to this time at the end (epoch seconds or ISO 8601). */
    until: time.optional(),
    fail_on: z.enum(['any', 'added', 'removed', 'never']).default('any'),
  })
  .strict();

export interface ReplayJob {
  readonly job_id: string;
  status: 'running' | 'done' | 'failed';
  readonly created_at: string;
  finished_at: string | null;
  source: string;
  /** Inputs replayed so far. */
  lines: number;
  report: ComparisonReport | null;
  error: string | null;
}

const KEEP = 20;
/**
 * Problems a job's report lists (`history.skipped` and `.warnings` count them all): the reports of the
 * last KEEP jobs stay in the live service's memory, so each is kept small (`warden replay --json` lists up
 * to MAX_ISSUES_LISTED).
 */
export const JOB_ISSUES_LISTED = 1_000;

export interface ReplayJobsDeps {
  readonly config: Config;
  readonly journal: InputJournal | null;
  readonly logger: Logger;
  readonly now?: () => number;
}

export class ReplayJobs {
  private readonly jobs = new Map<string, ReplayJob>();
  private running: Promise<void> | null = null;

  constructor(private readonly deps: ReplayJobsDeps) {}

  /** Validates the request, starts the job, and returns it (running). */
  start(body: unknown): ReplayJob {
    const request = parseInput(ReplayJobRequestSchema, body, 'replay job');
    let candidate: Config;
    try {
      candidate = parseCandidate(request.config, 'config');
    } catch (error) {
      const issues = (error as WardenError).issues ?? [(error as Error).message];
      throw new ValidationError(
        'replay job',
        issues.map((i) => `config: ${i}`),
      );
    }
    const running = [...this.jobs.values()].find((j) => j.status === 'running');
    if (running) throw new ConflictError(`replay job ${running.job_id} is still running; one runs at a time`);
    const ms = (value: number | string | undefined) => {
      if (value === undefined) return undefined;
      const at = timestampMs(value);
      // Refused, not ignored: a job over another span than the one asked for would mislead.
      if (typeof at === 'string') throw new ValidationError('replay job', [at]);
      return at;
    };
    const job: ReplayJob = {
      job_id: randomUUID(),
      status: 'running',
      created_at: new Date(this.deps.now?.() ?? Date.now()).toISOString(),
      finished_at: null,
      source: request.history !== undefined ? 'posted JSON Lines' : 'recorded history',
      lines: 0,
      report: null,
      error: null,
    };
    this.jobs.set(job.job_id, job);
    this.trim();
    this.running = this.run(job, candidate, request, ms(request.from), ms(request.until)).finally(() => {
      this.running = null;
    });
    return job;
  }

  get(jobId: string): ReplayJob | null {
    return this.jobs.get(jobId) ?? null;
  }

  list(): ReplayJob[] {
    return [...this.jobs.values()].reverse();
  }

  /** Resolves when no job is running (tests, shutdown). */
  async idle(): Promise<void> {
    await this.running;
  }

  private async run(
    job: ReplayJob,
    candidate: Config,
    request: z.output<typeof ReplayJobRequestSchema>,
    from: number | undefined,
    until: number | undefined,
  ): Promise<void> {
    let done: (() => void) | undefined;
    try {
      const history = await this.history(request.history, from);
      const { items, source } = history;
      done = history.done;
      job.source = source;
      const report = await whatIfAsync(this.deps.config, candidate, items, {
        source,
        failOn: request.fail_on,
        until,
        onProgress: (lines) => {
          job.lines = lines;
        },
      });
      job.report = { ...report, issues: report.issues.slice(0, JOB_ISSUES_LISTED) };
      job.status = 'done';
    } catch (error) {
      job.status = 'failed';
      job.error = error instanceof Error ? error.message : String(error);
      this.deps.logger.warn({ err: error, jobId: job.job_id }, 'replay job failed');
    } finally {
      done?.();
      job.finished_at = new Date(this.deps.now?.() ?? Date.now()).toISOString();
    }
  }

  private async history(
    text: string | undefined,
    from: number | undefined,
  ): Promise<{ items: Iterable<SourceItem>; source: string; done?: () => void }> {
    if (text !== undefined) return { items: jsonLines(text), source: 'posted JSON Lines' };
    if (this.deps.config.nats.url) {
      // Spooled to a temporary file as it is fetched and read back as the job goes: the service never
      // holds the whole stream in memory.
      const { inputStreamEntries } = await import('./nats-source.ts');
      const spool = new TemporaryHistory();
      try {
        const path = spool.file('stream.spool');
        const { entries, stream } = await inputStreamEntries(this.deps.config, { from });
        await spoolEntries(entries, path);
        const items = sequenced(spooledEntries(path), 'stream');
        return { items, source: `NATS stream ${stream}`, done: () => spool.remove() };
      } catch (error) {
        spool.remove();
        throw error;
      }
    }
    const journal = this.deps.journal;
    if (!journal) {
      throw new WardenError('conflict', 'this service keeps no input journal (journal.enabled is off)');
    }
    journal.flush();
    // A connection of its own, read as the job goes: the service goes on writing the journal meanwhile
    // (WAL: the reader sees the journal as it was when the read began).
    const reader = InputJournal.openToRead(journal.path);
    if (!reader) throw new WardenError('conflict', 'the input journal cannot be read');
    return {
      items: sequenced(reader.entries(from ?? 0), 'journal'),
      source: 'input journal',
      done: () => reader.close(),
    };
  }

  private trim(): void {
    const finished = [...this.jobs.values()].filter((j) => j.status !== 'running');
    for (const job of finished.slice(0, Math.max(finished.length - KEEP, 0))) this.jobs.delete(job.job_id);
  }
}
