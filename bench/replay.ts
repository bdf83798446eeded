/**
 * `npm run bench:replay`: recorded inputs per second through the policy lab's replay (src/lab): a JSON
 * Lines history read line by line, every input validated by the service's schemas, the real model and
 * training machines, timers on the virtual clock and the simulated registry. Beside it, in the same run and
 * alternating with it, two anchors over the same history: JSON.parse of every line alone, and raw XState
 * `actor.send` of the same inputs already made into events (the machine alone, no validation).
 * Options: --inputs N (default 200000), --models M (default 100), --rounds R (default 5). Target: the
 * replay's median at least 100,000 inputs/s.
 */
import { createActor } from 'xstate';
import { parseConfig } from '../src/config/load.ts';
import { createModelMachine } from '../src/machines/model-machine.ts';
import { modelPolicyFrom } from '../src/machines/model-policy.ts';
import { jsonLines } from '../src/lab/sources.ts';
import { replay } from '../src/lab/replay.ts';
import { option } from './options.ts';

const INPUTS = option('inputs', 200_000);
const MODELS = option('models', 100);
const ROUNDS = option('rounds', 5);
const TARGET = 100_000;
const config = parseConfig({});
const START = Date.UTC(2026, 0, 1) / 1000;

/**
 * A month of a guarded fleet: each model promoted, then evaluated every few minutes; now and then a new
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

function replayRate(text: string): { rate: number; rollbacks: number; issues: number } {
  const started = performance.now();
  const run = replay(config, jsonLines(text));
  const rate = run.lines / ((performance.now() - started) / 1000);
  return {
    rate,
    rollbacks: run.summary.models.reduce((n, m) => n + m.rollbacks.length, 0),
    issues: run.issues.length,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
const line = (label: string, xs: number[]) =>
  `  ${label}${fmt(median(xs))} inputs/s (median; min ${fmt(Math.min(...xs))}, max ${fmt(Math.max(...xs))})`;

const text = history();
const list = events(text);
const parsed: number[] = [];
const raw: number[] = [];
const replayed: number[] = [];
let detail = { rollbacks: 0, issues: 0 };
// One warm-up of each, then alternating rounds.
parseOnly(text);
rawSend(list);
replayRate(text);
for (let r = 0; r < ROUNDS; r++) {
  parsed.push(parseOnly(text));
  raw.push(rawSend(list));
  const run = replayRate(text);
  replayed.push(run.rate);
  detail = run;
}
console.log(
  `bench:replay: ${fmt(INPUTS)} recorded inputs over ${MODELS} models (JSON Lines), ${ROUNDS} alternating rounds, Node ${process.version}`,
);
console.log(line('anchor: JSON.parse of each line alone:          ', parsed));
console.log(line('anchor: raw XState actor.send (no validation):  ', raw));
console.log(
  line('replay: parse, validate, machines, timers, effects: ', replayed) +
    `; ${detail.rollbacks} rollbacks, ${detail.issues} issues`,
);
console.log(
  `  replay/raw actor.send: ${(median(replayed) / median(raw)).toFixed(2)}; target >= ${fmt(TARGET)} inputs/s: ${median(replayed) >= TARGET ? 'met' : 'NOT met'}`,
);
