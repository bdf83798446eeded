/**
 * `npm run bench:replay`: recorded inputs per second through the policy lab's replay (src/lab): a JSON
 * Lines history read line by line, every input validated by the service's schemas, the real model and
 * training machines, timers on the virtual clock and the simulated registry. Four replays, each beside the
 * same anchors measured in the same run, alternating rounds:
 * - one policy, one thread (`replay`);
 * - one policy, worker threads (`replayParallel`, sharded by training config);
 * - what-if, one thread (`whatIf`: the live and a candidate policy over every input);
 * - what-if, worker threads (`whatIfParallel`): what `warden replay --config` does.
 * The two by worker threads read the history from a temporary file, a chunk at a time, as `warden replay
 * FILE` does; the two in one thread read it from memory.
 * Every rate is inputs of the history per second (a what-if replays each input twice, once per policy).
 * Anchors: JSON.parse of every line alone, raw XState `actor.send` of the same inputs already made into
 * events (the machine alone through the interpreter the live service runs, one thread, no validation), and
 * the same events through the flat stepper the replays use (src/machines/flat-step.ts).
 * The default history is a month of 100 models each evaluated every 5 minutes (1,000,000 inputs): the
 * question the lab answers is "what would this have done last month?". A shorter history shows the fixed
 * cost of a worker thread (its start and its JIT warm-up, about 0.4 s on the development machine).
 * Options: --inputs N (default 1000000), --models M (default 100), --rounds R (default 5), --workers W
 * (default: the available parallelism), --young MB (young generation of each worker, default 16: DEFAULT_YOUNG_GENERATION_MB), --dist
 * (run the replays from the compiled dist/, as production does; needs `npm run build`). Target: at least
 * 100,000 inputs/s.
 */
import { writeFileSync } from 'node:fs';
import { createActor, initialTransition } from 'xstate';
import { parseConfig } from '../src/config/load.ts';
import { createModelMachine } from '../src/machines/model-machine.ts';
import { modelPolicyFrom } from '../src/machines/model-policy.ts';
import { flatStepper, type FlatSnapshot } from '../src/machines/flat-step.ts';
import type { ModelContext, ModelEvent, ModelStateName } from '../src/machines/model-types.ts';
import type { OutputEvent } from '../src/domain/events.ts';
import { option } from './options.ts';

type Sources = typeof import('../src/lab/sources.ts');
type Replays = typeof import('../src/lab/replay.ts');
type Parallel = typeof import('../src/lab/parallel.ts');
type Files = typeof import('../src/lab/history-files.ts');
const DIST = process.argv.includes('--dist');
const from = (module: string) => (DIST ? `../dist/lab/${module}.js` : `../src/lab/${module}.ts`);
const { jsonLines } = (await import(from('sources'))) as Sources;
const { replay, whatIf } = (await import(from('replay'))) as Replays;
const { TemporaryHistory } = (await import(from('history-files'))) as Files;
const { replayParallel, whatIfParallel, defaultWorkers, DEFAULT_YOUNG_GENERATION_MB } = (await import(
  from('parallel')
)) as Parallel;

const INPUTS = option('inputs', 1_000_000);
const MODELS = option('models', 100);
const ROUNDS = option('rounds', 5);
const WORKERS = option('workers', defaultWorkers());
const YOUNG = option('young', DEFAULT_YOUNG_GENERATION_MB);
const TARGET = 100_000;
const config = parseConfig({});
/** The candidate of the what-if: a stricter detection ladder. */
const candidate = parseConfig({
  detection: {
    mode: 'threshold',
    eloDrop: { minor: 10, moderate: 25, severe: 50, critical: 75 },
    escalateAt: 2,
    forceActionAt: 2,
  },
});
const START = Date.UTC(2026, 0, 1) / 1000;

/**
 * A guarded fleet: each model promoted, then evaluated every 5 minutes (with 100 models; 1,000,000 inputs
 * make a month); now and then a new
 * version is promoted, and one in ten new versions is bad (its evaluations drop 60 Elo), so the replay
 * detects, rolls back, pauses training and waits out cooldowns along the way.
 */
function history(): string {
  const lines: string[] = [];
  const version = new Array<number>(MODELS).fill(1);
  let t = START;
  for (let m = 0; m < MODELS; m++) {
    lines.push(
      JSON.stringify({ kind: 'promotion', model_id: `model_${m}`, version: 'v1', elo: 1500, timestamp: t }),
    );
  }
  for (let i = 0; lines.length < INPUTS; i++) {
    const m = i % MODELS;
    t += 3;
    if (i % (MODELS * 50) === m * 7) {
      version[m]!++;
      lines.push(
        JSON.stringify({
          kind: 'promotion',
          model_id: `model_${m}`,
          version: `v${version[m]}`,
          elo: 1500,
          timestamp: t,
        }),
      );
      continue;
    }
    const bad = version[m]! % 10 === 3;
    lines.push(
      JSON.stringify({
        kind: 'evaluation',
        event_id: `e${i}`,
        model_id: `model_${m}`,
        current_elo: (bad ? 1440 : 1500) - (i % 7),
        baseline_elo: 1500,
        games_played: 200,
        timestamp: t,
      }),
    );
  }
  return lines.join('\n');
}

function parseOnly(text: string): number {
  const started = performance.now();
  let n = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    JSON.parse(text.slice(start, end));
    n++;
    start = end + 1;
  }
  return n / ((performance.now() - started) / 1000);
}

type Event = Parameters<ReturnType<typeof createActor<ReturnType<typeof createModelMachine>>>['send']>[0];

function events(text: string): Array<{ model: number; event: Event }> {
  return text.split('\n').map((line) => {
    const p = JSON.parse(line);
    const model = Number(p.model_id.slice(6));
    const at = p.timestamp * 1000;
    return p.kind === 'promotion'
      ? { model, event: { type: 'PROMOTED', at, version: p.version, elo: p.elo } as Event }
      : {
          model,
          event: {
            type: 'EVALUATED',
            at,
            metrics: { currentElo: p.current_elo, baselineElo: p.baseline_elo },
            gamesPlayed: p.games_played,
            inputId: p.event_id,
          } as Event,
        };
  });
}

function rawSend(list: Array<{ model: number; event: Event }>): number {
  const machine = createModelMachine(modelPolicyFrom(config));
  const actors = Array.from({ length: MODELS }, (_, m) => {
    const actor = createActor(machine, { input: { modelId: `model_${m}`, configKey: `model_${m}` } });
    actor.start();
    return actor;
  });
  const started = performance.now();
  for (const { model, event } of list) actors[model]!.send(event);
  const rate = list.length / ((performance.now() - started) / 1000);
  for (const actor of actors) actor.stop();
  return rate;
}

/** The same events through the flat stepper the replays use: the machine alone, the lab's way. */
function rawFlat(list: Array<{ model: number; event: Event }>): number {
  const machine = createModelMachine(modelPolicyFrom(config));
  const step = flatStepper<ModelStateName, ModelContext, ModelEvent, OutputEvent>(machine);
  const snapshots = Array.from({ length: MODELS }, (_, m): FlatSnapshot<ModelStateName, ModelContext> => {
    const [initial] = initialTransition(machine, { modelId: `model_${m}`, configKey: `model_${m}` });
    return { value: initial.value as ModelStateName, context: initial.context };
  });
  const published: OutputEvent[] = [];
  const started = performance.now();
  for (const { model, event } of list) {
    snapshots[model] = step(snapshots[model]!, event as ModelEvent, published);
    published.length = 0;
  }
  return list.length / ((performance.now() - started) / 1000);
}

const lines = (text: string) => text.split('\n').length;

function rollbacksOf(run: { summary: { models: Array<{ rollbacks: unknown[] }> } }): number {
  return run.summary.models.reduce((n, m) => n + m.rollbacks.length, 0);
}

/** CPU seconds of the whole process (every thread) spent by each replay, beside its rate. */
const cpu = { one: [] as number[], onePar: [] as number[], two: [] as number[], twoPar: [] as number[] };
async function timed<T>(into: number[], f: () => T | Promise<T>): Promise<T> {
  const before = process.cpuUsage();
  const result = await f();
  const used = process.cpuUsage(before);
  into.push((used.user + used.system) / 1e6);
  return result;
}

function replayRate(text: string): { rate: number; rollbacks: number } {
  const started = performance.now();
  const run = replay(config, jsonLines(text));
  return { rate: run.lines / ((performance.now() - started) / 1000), rollbacks: rollbacksOf(run) };
}

async function parallelRate(): Promise<{ rate: number; rollbacks: number }> {
  const started = performance.now();
  const [run] = await replayParallel(
    [config],
    { format: 'jsonl-file', path: historyFile },
    { workers: WORKERS, youngGenerationMb: YOUNG },
  );
  return { rate: run!.lines / ((performance.now() - started) / 1000), rollbacks: rollbacksOf(run!) };
}

function whatIfRate(text: string): { rate: number; rollbacks: number } {
  const started = performance.now();
  const report = whatIf(config, candidate, jsonLines(text), { source: 'bench' });
  const rate = report.history.inputs / ((performance.now() - started) / 1000);
  return { rate, rollbacks: report.totals.live.rollbacks + report.totals.candidate.rollbacks };
}

async function whatIfParallelRate(): Promise<{ rate: number; rollbacks: number }> {
  const started = performance.now();
  const report = await whatIfParallel(
    config,
    candidate,
    { format: 'jsonl-file', path: historyFile },
    { source: 'bench', workers: WORKERS, youngGenerationMb: YOUNG },
  );
  const rate = report.history.inputs / ((performance.now() - started) / 1000);
  return { rate, rollbacks: report.totals.live.rollbacks + report.totals.candidate.rollbacks };
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
const line = (label: string, xs: number[]) =>
  `  ${label.padEnd(58)}${fmt(median(xs)).padStart(9)} inputs/s (median; min ${fmt(Math.min(...xs))}, max ${fmt(Math.max(...xs))})`;

const text = history();
const list = events(text);
// The worker runs read the history from a file chunk by chunk, as `warden replay FILE` does.
const spool = new TemporaryHistory();
const historyFile = spool.file('history.jsonl');
writeFileSync(historyFile, text);
const parsed: number[] = [];
const raw: number[] = [];
const flat: number[] = [];
const one: number[] = [];
const onePar: number[] = [];
const two: number[] = [];
const twoPar: number[] = [];
const rollbacks = { one: 0, onePar: 0, two: 0, twoPar: 0 };
// One warm-up of each, then alternating rounds.
parseOnly(text);
rawSend(list);
rawFlat(list);
replayRate(text);
await parallelRate();
whatIfRate(text);
await whatIfParallelRate();
for (let r = 0; r < ROUNDS; r++) {
  parsed.push(parseOnly(text));
  raw.push(rawSend(list));
  flat.push(rawFlat(list));
  const a = await timed(cpu.one, () => replayRate(text));
  one.push(a.rate);
  const b = await timed(cpu.onePar, () => parallelRate());
  onePar.push(b.rate);
  const c = await timed(cpu.two, () => whatIfRate(text));
  two.push(c.rate);
  const d = await timed(cpu.twoPar, () => whatIfParallelRate());
  twoPar.push(d.rate);
  Object.assign(rollbacks, { one: a.rollbacks, onePar: b.rollbacks, two: c.rollbacks, twoPar: d.rollbacks });
}
const verdict = (xs: number[]) => (median(xs) >= TARGET ? 'met' : 'NOT met');
console.log(
  `bench:replay: ${fmt(lines(text))} recorded inputs over ${MODELS} models (JSON Lines), ${ROUNDS} alternating rounds, ` +
    `${WORKERS} workers (young generation ${YOUNG} MB), ${DIST ? 'compiled dist/' : 'TypeScript sources (tsx)'}, Node ${process.version}`,
);
console.log(line('anchor: JSON.parse of each line alone:', parsed));
console.log(line('anchor: raw XState actor.send (one thread, no validation):', raw));
console.log(line("anchor: the same events stepped flat (the lab's stepper):", flat));
console.log(
  line('one policy, one thread (replay):', one) +
    `; ${rollbacks.one} rollbacks; /raw ${(median(one) / median(raw)).toFixed(2)}; CPU ${median(cpu.one).toFixed(2)} s`,
);
console.log(
  line(`one policy, ${WORKERS} workers (replayParallel):`, onePar) +
    `; ${rollbacks.onePar} rollbacks; /raw ${(median(onePar) / median(raw)).toFixed(2)}; CPU ${median(cpu.onePar).toFixed(2)} s`,
);
console.log(
  line('what-if live+candidate, one thread (whatIf):', two) +
    `; ${rollbacks.two} rollbacks; /raw ${(median(two) / median(raw)).toFixed(2)}; CPU ${median(cpu.two).toFixed(2)} s`,
);
console.log(
  line(`what-if, ${WORKERS} workers (warden replay):`, twoPar) +
    `; ${rollbacks.twoPar} rollbacks; /raw ${(median(twoPar) / median(raw)).toFixed(2)}; CPU ${median(cpu.twoPar).toFixed(2)} s`,
);
spool.remove();
console.log(
  `  target >= ${fmt(TARGET)} inputs/s: one policy (workers) ${verdict(onePar)}; what-if (workers, warden replay) ${verdict(twoPar)}`,
);
