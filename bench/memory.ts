/**
 * `npm run bench:memory`: what one Warden costs per model, and how long it takes to start, at 10,000,
 * 100,000 and 1,000,000 persisted models, each beside its anchor measured in the same run:
 * - start-up: spawn `src/main.ts` on the data directory until GET /readyz answers 200, beside the same with
 *   an empty data directory; alternating rounds (medians, min-max); with the RSS of the ready process;
 * - serving: one evaluation for every model (in process, passivation after --idle seconds), the peak RSS
 *   per model, beside a bare XState model actor's RSS per model (N actors created and resident).
 * The persisted models are written by a fast path (test/support/persisted-models.ts: one model through
 * Warden, its snapshot copied by a bulk insert), not by N inputs.
 * Options: --largest N (default 1000000; 100000 skips the million), --smallest N (default 10000),
 * --rounds R (start-up rounds, default 3),
 * --idle S (passivation idle time in the serving pass, default 2), --in-flight K (default 1000).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createActor, type AnyActorRef } from 'xstate';
import { parseConfig } from '../src/config/load.ts';
import { createModelMachine } from '../src/machines/model-machine.ts';
import { modelPolicyFrom } from '../src/machines/model-policy.ts';
import { createWarden } from '../src/warden.ts';
import { systemClock } from '../src/actors/ports.ts';
import { persistModels, persistedModelId } from '../test/support/persisted-models.ts';
import { freePort } from '../test/harness/free-port.ts';
import { option } from './options.ts';

const LARGEST = option('largest', 1_000_000);
const SMALLEST = option('smallest', 10_000);
const ROUNDS = option('rounds', 3);
const IDLE_S = option('idle', 2);
const IN_FLIGHT = option('in-flight', 1000);
const SIZES = [10_000, 100_000, 1_000_000].filter((n) => n >= SMALLEST && n <= LARGEST);
const CONFIG = { detection: { mode: 'threshold' as const } };
const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const rss = (): number => {
  gc();
  return process.memoryUsage().rss;
};
const heap = (): number => {
  gc();
  return process.memoryUsage().heapUsed;
};
const peakRss = (): number => process.resourceUsage().maxRSS * 1024;

// ----------------------------------------------------------------------------------------------------
// Child processes: each figure is measured in a fresh process.

/** N bare XState model actors, started and promoted once: RSS per actor. */
async function bare(n: number): Promise<Record<string, number>> {
  const machine = createModelMachine(modelPolicyFrom(parseConfig(CONFIG)));
  const before = rss();
  const heapBefore = heap();
  const actors: AnyActorRef[] = [];
  for (let m = 0; m < n; m++) {
    const actor = createActor(machine, { input: { modelId: `model_${m}`, configKey: `model_${m}` } });
    actor.start();
    actor.send({ type: 'PROMOTED', at: 0, version: 'v1', elo: 1500 });
    actors.push(actor);
  }
  const heapPerModel = (heap() - heapBefore) / n;
  const after = rss();
  return { perModel: (after - before) / n, heapPerModel, actors: actors.length };
}

/** One evaluation for every persisted model, through Warden in this process, with passivation on. */
async function serve(dir: string, n: number): Promise<Record<string, number>> {
  const started = performance.now();
  const warden = await createWarden(parseConfig({ ...CONFIG, dataDir: dir, passivateAfterSeconds: IDLE_S }), {
    clock: systemClock,
  });
  const startMs = performance.now() - started;
  const afterStart = rss();
  const heapAfterStart = heap();
  let maxResident = 0;
  const passStarted = performance.now();
  for (let i = 0; i < n; i += IN_FLIGHT) {
    const batch: Array<Promise<unknown>> = [];
    for (let j = i; j < Math.min(i + IN_FLIGHT, n); j++)
      batch.push(
        warden.evaluate({
          event_id: `serve-${j}`,
          model_id: persistedModelId(j),
          current_elo: 1499,
          games_played: 200,
        }),
      );
    await Promise.all(batch);
    maxResident = Math.max(maxResident, warden.residency().models);
  }
  const passSeconds = (performance.now() - passStarted) / 1000;
  const residency = warden.residency();
  const heapServing = heap();
  const serving = rss();
  await warden.stop();
  return {
    startMs,
    rssAfterStart: afterStart,
    rssServing: serving,
    peakRss: peakRss(),
    maxResident,
    resident: residency.models,
    heapPerResident: (heapServing - heapAfterStart) / residency.models,
    passivated: residency.passivated,
    rate: n / passSeconds,
  };
}

async function child(): Promise<void> {
  const mode = process.argv[process.argv.indexOf('--child') + 1];
  const n = option('n', 1);
  const dir = process.argv[process.argv.indexOf('--dir') + 1] ?? '';
  const result = mode === 'bare' ? await bare(n) : await serve(dir, n);
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

function runChild(args: string[], node: string[] = []): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...node, '--expose-gc', '--import', 'tsx', SELF, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) resolve(JSON.parse(line.slice(7)));
      else reject(new Error(`child ${args.join(' ')} exited ${code}: ${out.slice(-2000)}`));
    });
  });
}

/** Spawns the service on `dir` and times it until /readyz answers 200; then its RSS, then SIGTERM. */
async function startUp(dir: string): Promise<{ ms: number; rss: number }> {
  const port = await freePort();
  const started = performance.now();
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: { ...process.env, WARDEN_DATA_DIR: dir, WARDEN_HTTP_PORT: String(port), WARDEN_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`warden exited with ${proc.exitCode} before it was ready`);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`)
        .then((r) => r.status === 200)
        .catch(() => false);
      if (ready) break;
      if (performance.now() - started > 120_000) throw new Error('warden not ready after 120 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const ms = performance.now() - started;
    const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { ms, rss: kb * 1024 };
  } finally {
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  }
}

// ----------------------------------------------------------------------------------------------------

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const spread = (values: number[], fmt: (n: number) => string) =>
  `${fmt(median(values))} (${fmt(Math.min(...values))}-${fmt(Math.max(...values))})`;
const ms = (n: number) => `${Math.round(n).toLocaleString('en-US')} ms`;
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const mib = (n: number) => `${Math.round(n / 2 ** 20).toLocaleString('en-US')} MiB`;

async function main(): Promise<void> {
  console.log(
    `bench:memory: ${SIZES.map((n) => n.toLocaleString('en-US')).join(', ')} persisted models, ${ROUNDS} start-up rounds, passivation after ${IDLE_S} s in the serving pass, Node ${process.version}`,
  );
  const empty = mkdtempSync(join(tmpdir(), 'warden-mem-empty-'));
  try {
    await startUp(empty); // warm the file system cache for tsx and the modules
    for (const n of SIZES) {
      const dir = mkdtempSync(join(tmpdir(), 'warden-mem-'));
      try {
        const writing = performance.now();
        await persistModels(dir, n, CONFIG);
        console.log(
          `${n.toLocaleString('en-US')} models (database written in ${ms(performance.now() - writing)}):`,
        );
        const anchors: Array<{ ms: number; rss: number }> = [];
        const wardens: Array<{ ms: number; rss: number }> = [];
        for (let round = 0; round < ROUNDS; round++) {
          anchors.push(await startUp(empty));
          wardens.push(await startUp(dir));
        }
        console.log(
          `  start-up to /readyz: ${spread(
            wardens.map((w) => w.ms),
            ms,
          )}; empty Warden ${spread(
            anchors.map((a) => a.ms),
            ms,
          )}; RSS when ready ${mib(median(wardens.map((w) => w.rss)))} (empty: ${mib(median(anchors.map((a) => a.rss)))})`,
        );
        // Warden with Node's default heap limit; the anchor's million actors need more than that.
        const served = await runChild(['--child', 'serve', '--n', String(n), '--dir', dir]);
        const raw = await runChild(['--child', 'bare', '--n', String(n)], ['--max-old-space-size=16384']);
        // Per resident actor: the RSS after a full GC at the end of the pass, above the started process.
        const perResident = (served.rssServing! - served.rssAfterStart!) / served.resident!;
        console.log(
          `  serving one evaluation per model (${Math.round(served.rate!).toLocaleString('en-US')}/s; in-process start ${ms(served.startMs!)}): peak RSS ${mib(served.peakRss!)} = ${kib(served.peakRss! / n)} per model; at most ${served.maxResident!.toLocaleString('en-US')} actors resident (${served.passivated!.toLocaleString('en-US')} passivations); at the end ${served.resident!.toLocaleString('en-US')} resident, RSS ${mib(served.rssServing!)} after GC, ${kib(perResident)} per resident actor above the started process (${mib(served.rssAfterStart!)})`,
        );
        console.log(
          `  anchor, bare XState model actors, all ${n.toLocaleString('en-US')} resident: ${kib(raw.perModel!)} RSS per model (${mib(raw.perModel! * n)} in all); Warden per resident actor / bare: ${(perResident / raw.perModel!).toFixed(2)}`,
        );
        console.log(
          `  live JS heap per resident actor (after a full GC): Warden ${kib(served.heapPerResident!)}, bare XState actor ${kib(raw.heapPerModel!)}; ratio ${(served.heapPerResident! / raw.heapPerModel!).toFixed(2)}`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
}

(process.argv.includes('--child') ? child() : main()).catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
