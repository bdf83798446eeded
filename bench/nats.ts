/**
 * `npm run bench:nats`: NATS mode against its anchors, one nats-server (started here on a free port, with
 * the partition mapping), one client library, one process, alternating rounds, medians and min-max:
 * - throughput: a backlog of inputs (one promotion per model, then healthy evaluations) taken by one
 *   Warden instance, from its first input applied to the last one committed and acknowledged, beside a
 *   raw JetStream durable pull consumer that acknowledges each message (consume+ack) on the same backlog
 *   size; at 100 and at 10,000 models;
 * - latency: a critical regression published, until its TRAINING_PAUSED event arrives (evaluation,
 *   commit, registry rollback, rollback event, the training config's pause), beside a NATS request/reply
 *   round trip, p50 and p99, samples of both taken in turns, each with the instance idle (until 2026-11-28
 *   the round trips followed each pause at once, slowed by the work the regression left behind);
 * - beside each throughput figure, this process's CPU time per input over the same window (less at the
 *   mercy of other work on the machine than the rates).
 * Two more anchors bound what any design can reach on this machine (they are not modes of Warden):
 * - consume+ack+step: the raw consumer above, also stepping the model machine once per message (raw
 *   `actor.send`, one actor per model, no validation, nothing written): the most a service that runs one
 *   XState step per input, in the process that consumes it, can do; its ratio to raw is the ceiling of
 *   Warden's ratio;
 * - four dependent writes: four revision-checked KV writes in a row, then a publication received by a
 *   subscriber, as the regression-to-pause chain does (it has four such writes); its ratio to
 *   request/reply is the floor of the chain's, before any of Warden's own work. Since 2026-11-29 written
 *   as Warden writes, through its JetStreamWriter (until then through nats.js's `kv.update`).
 * Options: --inputs N (backlog per round, default 50000), --rounds R (default 3), --partitions P (input
 * partitions of the Warden instance, default 1), --samples S (latency samples, default 300).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { createActor, type Actor } from 'xstate';
import { startNatsServer } from '../test/harness/nats-server.ts';
import { parseConfig } from '../src/config/load.ts';
import { createModelMachine, type ModelMachine } from '../src/machines/model-machine.ts';
import { modelPolicyFrom } from '../src/machines/model-policy.ts';
import type { RuntimeObserver } from '../src/actors/runtime.ts';
import { JetStreamWriter } from '../src/nats/js-writer.ts';
import { startNatsInstance } from './nats-instance.ts';
import { option } from './options.ts';

const INPUTS = option('inputs', 50_000);
const ROUNDS = option('rounds', 3);
const PARTITIONS = option('partitions', 1);
const SAMPLES = option('samples', 300);
const MODEL_COUNTS = [100, 10_000];

const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const quantile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
};
const spread = (values: number[], digits = 0) =>
  `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)})`;

let round = 0;
const prefixes: string[] = [];
const streamOf = (prefix: string) => `${prefix.toUpperCase()}_IN`;

/** The backlog: per model one promotion, then healthy evaluations, models interleaved. */
async function publishBacklog(nc: NatsConnection, prefix: string, models: number): Promise<void> {
  const js = jetstream(nc);
  const encoder = new TextEncoder();
  const pending: Array<Promise<unknown>> = [];
  for (let i = 0; i < INPUTS; i++) {
    const m = `m${i % models}`;
    const body =
      i < models
        ? { event_id: `${prefix}-${i}`, model_id: `${m}_v1`, elo: 1500 }
        : { event_id: `${prefix}-${i}`, model_id: m, current_elo: 1500 - (i % 7), games_played: 200 };
    const kind = i < models ? 'promotion' : 'evaluation';
    pending.push(js.publish(`${prefix}.in.${kind}.${m}`, encoder.encode(JSON.stringify(body))));
    if (pending.length >= 2_000) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

/**
 * Steps the model machine once per input, as Warden's model actor would: a promotion or a healthy
 * evaluation (raw `actor.send`: no validation, nothing written). For the consume+ack+step anchor.
 */
function machineStepper(): (subject: string, payload: Record<string, unknown>) => void {
  const machine = createModelMachine(modelPolicyFrom(parseConfig({ cooldownSeconds: 3600 })));
  const actors = new Map<string, Actor<ModelMachine>>();
  let at = 0;
  return (subject, payload) => {
    const model = subject.slice(subject.lastIndexOf('.') + 1);
    let actor = actors.get(model);
    if (!actor) {
      actor = createActor(machine, { input: { modelId: model, configKey: model } });
      actor.start();
      actors.set(model, actor);
    }
    at++;
    if (subject.includes('.promotion.'))
      actor.send({ type: 'PROMOTED', at, version: 'v1', elo: payload.elo as number });
    else
      actor.send({
        type: 'EVALUATED',
        at,
        metrics: { currentElo: payload.current_elo as number },
        gamesPlayed: payload.games_played as number,
        inputId: payload.event_id as string,
      });
  };
}

/** Inputs per second, and this process's CPU time per input over the same window (µs, all threads). */
interface Rate {
  readonly perSecond: number;
  readonly cpuMicros: number;
}

const cpuSince = (start: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / INPUTS;
};

/**
 * Raw JetStream: a durable pull consumer acknowledging every message; with `step`, it also steps the model
 * machine once per message (see machineStepper).
 */
async function anchor(
  nc: NatsConnection,
  jsm: JetStreamManager,
  models: number,
  step = false,
): Promise<Rate> {
  const stepMachine = step ? machineStepper() : null;
  const prefix = `raw${++round}`;
  prefixes.push(prefix);
  await jsm.streams.add({ name: streamOf(prefix), subjects: [`${prefix}.in.>`] });
  await publishBacklog(nc, prefix, models);
  await jsm.consumers.add(streamOf(prefix), { durable_name: 'c', ack_policy: AckPolicy.Explicit });
  const consumer = await jetstream(nc).consumers.get(streamOf(prefix), 'c');
  let first = 0;
  let cpu = process.cpuUsage();
  let n = 0;
  const done = deferred();
  const messages = await consumer.consume({
    max_messages: 1024,
    callback: (m) => {
      if (n === 0) {
        first = performance.now();
        cpu = process.cpuUsage();
      }
      const payload = JSON.parse(m.string()) as Record<string, unknown>; // what any consumer does
      stepMachine?.(m.subject, payload);
      m.ack();
      if (++n === INPUTS) done.resolve(undefined);
    },
  });
  await done.promise;
  await nc.flush();
  const seconds = (performance.now() - first) / 1000;
  const cpuMicros = cpuSince(cpu);
  await messages.close();
  await jsm.streams.delete(streamOf(prefix));
  return { perSecond: INPUTS / seconds, cpuMicros };
}

function deferred(): { promise: Promise<unknown>; resolve: (v: unknown) => void } {
  let resolve!: (v: unknown) => void;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/** One Warden instance on its own prefix (cooldowns long enough that none ends during a round). */
const startWarden = (url: string, prefix: string, observer: RuntimeObserver = {}) =>
  startNatsInstance(url, prefix, { config: { cooldownSeconds: 3600 }, partitions: PARTITIONS, observer });

async function cleanUp(jsm: JetStreamManager, prefix: string): Promise<void> {
  for await (const name of jsm.streams.names())
    if (name.startsWith(prefix.toUpperCase()) || name.startsWith(`KV_${prefix}_`))
      await jsm.streams.delete(name).catch(() => undefined);
}

/** Warden: inputs per second from the first applied to the last committed and acknowledged. */
async function wardenRate(
  url: string,
  nc: NatsConnection,
  jsm: JetStreamManager,
  models: number,
): Promise<Rate> {
  const prefix = `w${++round}`;
  // The streams and buckets exist before the backlog is published (Warden makes them on start).
  const setup = await startWarden(url, prefix);
  await setup.stop();
  await publishBacklog(nc, prefix, models);
  let first = 0;
  let cpu = process.cpuUsage();
  let applied = 0;
  const all = deferred();
  const w = await startWarden(url, prefix, {
    outcome: (kind: string) => {
      if (kind !== 'model') return;
      if (applied === 0) {
        first = performance.now();
        cpu = process.cpuUsage();
      }
      if (++applied === INPUTS) all.resolve(undefined);
    },
  });
  await all.promise;
  // Committed and acknowledged: nothing left pending or unacknowledged on the consumers.
  for (;;) {
    const floors = await Promise.all(
      (PARTITIONS > 1
        ? [...Array(PARTITIONS).keys()].map((k) => `${prefix}_inputs_${k}`)
        : [`${prefix}_inputs`]
      ).map(async (name) => {
        const info = await jsm.consumers.info(streamOf(prefix), name).catch(() => null);
        return info ? info.num_pending + info.num_ack_pending : 1;
      }),
    );
    if (floors.every((n) => n === 0)) break;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  const seconds = (performance.now() - first) / 1000;
  const cpuMicros = cpuSince(cpu);
  await w.stop();
  await cleanUp(jsm, prefix);
  return { perSecond: INPUTS / seconds, cpuMicros };
}

async function throughput(url: string, nc: NatsConnection, jsm: JetStreamManager, models: number) {
  const raw: Rate[] = [];
  const stepped: Rate[] = [];
  const ours: Rate[] = [];
  const ratios: number[] = [];
  const ceilings: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const a = await anchor(nc, jsm, models);
    const s = await anchor(nc, jsm, models, true);
    const w = await wardenRate(url, nc, jsm, models);
    raw.push(a);
    stepped.push(s);
    ours.push(w);
    ratios.push(w.perSecond / a.perSecond);
    ceilings.push(s.perSecond / a.perSecond);
    console.log(
      `  round ${r + 1}: Warden ${w.perSecond.toFixed(0)}/s, raw consume+ack ${a.perSecond.toFixed(0)}/s, consume+ack+step ${s.perSecond.toFixed(0)}/s; CPU per input ${w.cpuMicros.toFixed(0)}, ${a.cpuMicros.toFixed(0)} and ${s.cpuMicros.toFixed(0)} µs`,
    );
  }
  const rates = (of: Rate[]) => of.map((x) => x.perSecond);
  const cpus = (of: Rate[]) => of.map((x) => x.cpuMicros);
  console.log(
    `${INPUTS} inputs over ${models} models: Warden ${spread(rates(ours))} inputs/s, raw JetStream consume+ack ${spread(rates(raw))}/s, ratio ${spread(ratios, 3)}`,
  );
  console.log(
    `  ceiling: consume+ack+step (one raw actor.send per input) ${spread(rates(stepped))}/s, ratio to raw ${spread(ceilings, 3)}`,
  );
  console.log(
    `  CPU per input (this process, all threads): Warden ${spread(cpus(ours))} µs, raw consume+ack ${spread(cpus(raw))} µs, consume+ack+step ${spread(cpus(stepped))} µs`,
  );
}

async function latency(url: string, nc: NatsConnection, jsm: JetStreamManager): Promise<void> {
  const prefix = 'lat';
  const w = await startWarden(url, prefix);
  const js = jetstream(nc);
  const models = SAMPLES;
  for (let i = 0; i < models; i++) {
    const m = `l${i}`;
    await js.publish(
      `${prefix}.in.promotion.${m}`,
      JSON.stringify({ event_id: `${m}-p1`, model_id: `${m}_v1`, elo: 1500 }),
    );
    await js.publish(
      `${prefix}.in.promotion.${m}`,
      JSON.stringify({ event_id: `${m}-p2`, model_id: `${m}_v2`, elo: 1520 }),
    );
  }
  await w.warden.idle();
  const paused = new Map<string, () => void>();
  const sub = nc.subscribe(`${prefix}.evt.training_paused.>`, {
    callback: (_e, m) => paused.get(m.subject.slice(m.subject.lastIndexOf('.') + 1))?.(),
  });
  // The request/reply anchor: a responder on its own connection, as Warden's commands are.
  const responder = await connect({ servers: url });
  responder.subscribe('bench.echo', {
    callback: (_e, m) => {
      m.respond(m.data);
    },
  });
  await responder.flush();
  // The four-dependent-writes anchor: its own connection (set as Warden's: no async traces), bucket and
  // stream, a value of about a model's size.
  const anchorNc = await connect({ servers: url, noAsyncTraces: true });
  const bucket = await new Kvm(anchorNc).create('lat_anchor', { history: 1 });
  await jsm.streams.add({ name: 'LAT_ANCHOR', subjects: ['bench.anchor.>'] });
  const value = JSON.stringify({ snapshot: 'x'.repeat(900) });
  // Written as Warden writes since 2026-11-29 (its own reply subscription, not nats.js's request): the floor
  // is what the cheapest write path can do.
  const anchorWriter = new JetStreamWriter(anchorNc, 5_000);
  const revisions = await Promise.all([0, 1, 2, 3].map((k) => bucket.put(`k${k}`, value)));
  let delivered: () => void = () => undefined;
  const anchorSub = anchorNc.subscribe('bench.anchor.done', { callback: () => delivered() });
  const fourWrites = async (): Promise<number> => {
    const t0 = performance.now();
    for (let k = 0; k < 4; k++)
      revisions[k] = await anchorWriter.update(`$KV.lat_anchor.k${k}`, value, revisions[k]!);
    const received = new Promise<void>((resolve) => (delivered = resolve));
    await anchorWriter.publish('bench.anchor.done', new TextEncoder().encode(value));
    await received;
    return performance.now() - t0;
  };
  const pause: number[] = [];
  // This process's CPU from each evaluation's publication until the instance is idle again (the regression
  // and what it leaves behind: acknowledgements, the pause acknowledged), the anchors' samples left out.
  let regressionCpu = 0;
  const echo: number[] = [];
  const chain: number[] = [];
  for (let i = 0; i < models; i++) {
    const m = `l${i}`;
    // Every sample, of either kind, starts with the instance idle: the work a regression leaves behind it
    // (its acknowledgements, the pause acknowledged, their commits) shares this process's event loop and
    // would otherwise slow the request/reply samples taken right after it.
    await w.warden.idle();
    const arrived = new Promise<void>((resolve) => paused.set(m, resolve));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await js.publish(
      `${prefix}.in.evaluation.${m}`,
      JSON.stringify({ event_id: `${m}-e1`, model_id: `${m}_v2`, current_elo: 1400, games_played: 200 }),
    );
    await arrived;
    pause.push(performance.now() - t0);
    await w.warden.idle();
    const used = process.cpuUsage(cpu0);
    regressionCpu += used.user + used.system;
    for (let k = 0; k < 3; k++) {
      const t1 = performance.now();
      await nc.request('bench.echo', '{"ping":true}', { timeout: 5_000 });
      echo.push(performance.now() - t1);
    }
    chain.push(await fourWrites());
  }
  sub.unsubscribe();
  anchorSub.unsubscribe();
  await jsm.streams.delete('LAT_ANCHOR');
  await bucket.destroy();
  await anchorNc.close();
  await responder.close();
  await w.stop();
  await cleanUp(jsm, prefix);
  const p = (values: number[], q: number) => quantile(values, q).toFixed(2);
  console.log(
    `evaluation to TRAINING_PAUSED (${pause.length} regressions): p50 ${p(pause, 0.5)} ms, p99 ${p(pause, 0.99)} ms; NATS request/reply (${echo.length}): p50 ${p(echo, 0.5)} ms, p99 ${p(echo, 0.99)} ms; ratio ${(quantile(pause, 0.5) / quantile(echo, 0.5)).toFixed(1)}x at p50, ${(quantile(pause, 0.99) / quantile(echo, 0.99)).toFixed(1)}x at p99; CPU per regression ${(regressionCpu / pause.length / 1000).toFixed(2)} ms`,
  );
  console.log(
    `  floor: four dependent KV writes, then a publication received (${chain.length}): p50 ${p(chain, 0.5)} ms, p99 ${p(chain, 0.99)} ms; ratio to request/reply ${(quantile(chain, 0.5) / quantile(echo, 0.5)).toFixed(1)}x at p50, ${(quantile(chain, 0.99) / quantile(echo, 0.99)).toFixed(1)}x at p99`,
  );
}

async function main(): Promise<void> {
  await using server = await startNatsServer({
    partitions:
      PARTITIONS === 1
        ? {}
        : Object.fromEntries(
            ['lat', ...Array.from({ length: 2 * ROUNDS * MODEL_COUNTS.length + 2 }, (_, i) => `w${i}`)].map(
              (p) => [p, PARTITIONS],
            ),
          ),
  });
  const nc = await connect({ servers: server.url });
  const jsm = await jetstreamManager(nc);
  console.log(`nats-server ${nc.info?.version}, Node ${process.version}, input partitions ${PARTITIONS}`);
  for (const models of MODEL_COUNTS) await throughput(server.url, nc, jsm, models);
  await latency(server.url, nc, jsm);
  await nc.close();
}

await main();
