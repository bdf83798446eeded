/**
 * `npm run bench:core`: evaluations per second through the embedded runtime (validation, the model actor,
 * batched SQLite persistence of every changed snapshot) beside raw XState `actor.send` on the same machine,
 * in the same run, and the ratio, in two steady states: 100 models, and 10,000 models (where nearly every
 * evaluation in a batch changes a different actor). A third column runs the same runtime over a store that
 * writes nothing (no SQLite, no input journal): what the runtime costs before persistence. Options: --evaluations N (default 50000), --models M
 * (one case of M models instead of both), --in-flight K (concurrent requests, default 1000), --rounds R
 * (alternating measurements, default 5), --uuid-ids (event ids of 36 characters, as UUIDs, instead of
 * `bench-<n>`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createActor } from 'xstate';
import { parseConfig } from '../src/config/load.ts';
import { createModelMachine } from '../src/machines/model-machine.ts';
import { modelPolicyFrom } from '../src/machines/model-policy.ts';
import { createWarden } from '../src/warden.ts';
import { ManualClock } from '../src/actors/manual-clock.ts';
import type { CommitBatch, ModelRegistry, StateStore } from '../src/actors/ports.ts';
import { option } from './options.ts';

const EVALUATIONS = option('evaluations', 50_000);
const CASES = process.argv.includes('--models') ? [option('models', 100)] : [100, 10_000];
let MODELS = CASES[0]!;
const IN_FLIGHT = option('in-flight', 1000);
/** Raw and runtime alternate, and the medians are compared: one round is at the mercy of a busy machine. */
const ROUNDS = option('rounds', 5);
const config = parseConfig({ detection: { mode: 'threshold' } });

/** Event ids as many producers send them (UUIDs, 36 characters), instead of short ones. */
const UUID_IDS = process.argv.includes('--uuid-ids');
const eventId = (i: number) =>
  UUID_IDS ? `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` : `bench-${i}`;

/** A healthy evaluation with small noise: the steady state of a guarded model. */
function evaluation(i: number) {
  return {
    event_id: eventId(i),
    model_id: `model_${i % MODELS}`,
    current_elo: 1500 - (i % 7),
    games_played: 200,
  };
}

function raw(): number {
  const machine = createModelMachine(modelPolicyFrom(config));
  const actors = Array.from({ length: MODELS }, (_, m) => {
    const actor = createActor(machine, { input: { modelId: `model_${m}`, configKey: `model_${m}` } });
    actor.start();
    actor.send({ type: 'PROMOTED', at: 0, version: 'v1', elo: 1500 });
    return actor;
  });
  const started = performance.now();
  for (let i = 0; i < EVALUATIONS; i++) {
    const e = evaluation(i);
    actors[i % MODELS]!.send({
      type: 'EVALUATED',
      at: i,
      metrics: { currentElo: e.current_elo },
      gamesPlayed: e.games_played,
      inputId: e.event_id,
    });
  }
  const seconds = (performance.now() - started) / 1000;
  for (const actor of actors) actor.stop();
  return EVALUATIONS / seconds;
}

/**
 * A store and registry that keep nothing: every commit succeeds at once (next revision), nothing is
 * serialized or written, and no input journal exists (it lives beside the SQLite store). Not a mode of
 * Warden: an anchor that shows, in the same run, how much of the gap to raw XState is persistence.
 */
function nothingWritten(): StateStore & ModelRegistry {
  return {
    loadActors: async () => [],
    loadActor: async () => null,
    commit: async (batch: CommitBatch) => batch.actors.map((a) => a.revision + 1),
    pendingOutbox: async () => [],
    markPublished: async () => undefined,
    history: async () => [],
    close: async () => undefined,
    recordPromotion: async () => undefined,
    rollback: async () => undefined,
    production: async () => null,
  };
}

async function runtime(writes = true): Promise<{ rate: number; commits: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
  try {
    const discard = writes ? null : nothingWritten();
    const warden = await createWarden(parseConfig({ dataDir: dir, detection: { mode: 'threshold' } }), {
      clock: new ManualClock(),
      ...(discard ? { store: discard, registry: discard } : {}),
    });
    for (let m = 0; m < MODELS; m += IN_FLIGHT) {
      const batch: Array<Promise<unknown>> = [];
      for (let j = m; j < Math.min(m + IN_FLIGHT, MODELS); j++)
        batch.push(warden.promote({ model_id: `model_${j}`, version: 'v1', elo: 1500 }));
      await Promise.all(batch);
    }
    await warden.idle();
    const started = performance.now();
    for (let i = 0; i < EVALUATIONS; i += IN_FLIGHT) {
      const batch: Array<Promise<unknown>> = [];
      for (let j = i; j < Math.min(i + IN_FLIGHT, EVALUATIONS); j++)
        batch.push(warden.evaluate(evaluation(j)));
      await Promise.all(batch);
    }
    const seconds = (performance.now() - started) / 1000;
    const persisted = writes ? await warden.store.loadActor('model', 'model_0') : null;
    await warden.stop();
    return { rate: EVALUATIONS / seconds, commits: `model_0 at revision ${persisted?.revision}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * V8 and Node flags of this process (say `NODE_OPTIONS=--max-semi-space-size=64`): printed in the header, since
 * they change both columns (raw and runtime run in this one process). tsx's own loader flags are left out.
 */
function nodeFlags(): string {
  const own = process.execArgv.filter(
    (a, i, all) =>
      a.startsWith('--') &&
      !/tsx/.test(a) &&
      !/tsx/.test(all[i + 1] ?? '') &&
      !/^--(require|import)$/.test(a),
  );
  const fromEnv = process.env.NODE_OPTIONS?.trim();
  return [...own, ...(fromEnv ? [`NODE_OPTIONS="${fromEnv}"`] : [])].join(' ') || 'none';
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  for (const models of CASES) {
    MODELS = models;
    await measure();
  }
}

async function measure(): Promise<void> {
  console.log(
    `bench:core: ${EVALUATIONS} healthy evaluations over ${MODELS} models${UUID_IDS ? ' (UUID event ids)' : ''}, ${IN_FLIGHT} in flight, ${ROUNDS} alternating rounds, Node ${process.version}, node flags: ${nodeFlags()}`,
  );
  raw(); // warm-up: JIT the machine before any measurement
  await runtime();
  await runtime(false);
  const raws: number[] = [];
  const runtimes: number[] = [];
  const unwritten: number[] = [];
  let commits = '';
  for (let round = 0; round < ROUNDS; round++) {
    raws.push(raw());
    const result = await runtime();
    runtimes.push(result.rate);
    commits = result.commits;
    unwritten.push((await runtime(false)).rate);
  }
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const each = (values: number[]) => values.map(fmt).join(', ');
  const ratios = runtimes.map((r, i) => r / raws[i]!);
  console.log(
    `  raw XState actor.send (no validation, no persistence): ${fmt(median(raws))} evaluations/s (median of ${each(raws)})`,
  );
  console.log(
    `  Warden embedded runtime (zod, actor, SQLite commit):   ${fmt(median(runtimes))} evaluations/s (median of ${each(runtimes)}; ${commits})`,
  );
  console.log(
    `  the same runtime, nothing written (no SQLite, no journal): ${fmt(median(unwritten))} evaluations/s (median of ${each(unwritten)}; /raw ${(median(unwritten) / median(raws)).toFixed(2)})`,
  );
  console.log(
    `  ratio of the medians, runtime/raw: ${(median(runtimes) / median(raws)).toFixed(2)} (per round ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}; target >= 0.50)`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
