/**
 * `npm run bench:nats-memory`: what one Warden instance in NATS mode costs per persisted model, and how long
 * it takes to start, at 10,000 and 100,000 persisted models, beside the same start over an empty bucket in
 * the same run (alternating rounds, medians and min-max). One nats-server, started here on a free port.
 * - start: `createNatsAdapters`, `createWarden` and `attach`, in process, until Warden takes inputs; then
 *   until an evaluation of the last model written is applied (its value read for it alone), and until the
 *   instance has read every value (Warden.whenLoaded: lists, counts and the timers of models not resident);
 * - heap: the JS heap after a full garbage collection, once every value is read, against before the start
 *   (per model);
 * - resident ("loaded at start"): how many model actors are resident then: the one evaluated, and those whose
 *   state needs the runtime at start.
 * The persisted models are written by a fast path: one model taken through Warden (a promotion, then 150
 * evaluations alternating a minor regression and a clean one, then 20 critical regressions of new versions,
 * each rolled back: a model in service for a while, with a full timeline of 100 lines and a rollback
 * history), its stored value, timeline, rollback history and registry pointer copied under every other id,
 * wherever the build keeps them, not by N inputs. (Until 2026-11-29 the template had three evaluations and
 * one timeline line, which hid that every value then carried its timeline: 21.4 KiB of heap per such model
 * instead of 1.0; and no rollback, which hid that every instance held every model's history.)
 * Options: --largest N (default 100000; 1000000 adds a million models, about 5 minutes to write), --rounds R
 * (default 3), --rollbacks K (the template's rollbacks, default 20).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { startNatsServer } from '../test/harness/nats-server.ts';
import { natsNames } from '../src/nats/names.ts';
import { startNatsInstance } from './nats-instance.ts';
import { option } from './options.ts';

const LARGEST = option('largest', 100_000);
const ROUNDS = option('rounds', 3);
const ROLLBACKS = option('rollbacks', 20);
const SIZES = [10_000, 100_000, 1_000_000].filter((n) => n <= LARGEST);
const TEMPLATE = 'zzTemplateModelzz';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('bench:nats-memory needs node --expose-gc (npm run bench:nats-memory sets it)');
const heap = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const spread = (values: number[], unit: string, digits = 0) =>
  `${median(values).toFixed(digits)} ${unit} (${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)})`;

const start = (url: string, prefix: string) => startNatsInstance(url, prefix);

/** Writes `count` healthy models into `prefix`'s buckets as Warden would have committed them. */
async function persist(nc: NatsConnection, url: string, prefix: string, count: number): Promise<void> {
  // A model as it rests once quiet: the last of its timeline lines moved to their bucket, which happens a
  // minute after they were committed; this instance moves them at its next sweep instead.
  // No cooldown and no limit on automatic rollbacks: the template rolls back ROLLBACKS times in a row.
  const w = await startNatsInstance(url, prefix, {
    config: { cooldownSeconds: 0, autoRollbackLimit: { max: ROLLBACKS + 1, windowSeconds: 86_400 } },
    hooks: { store: { sweepEveryMs: 100, timelineMoveAfterMs: 0 } },
  });
  await w.warden.promote({ model_id: TEMPLATE, version: 'v1', elo: 1500 });
  for (let i = 0; i < 150; i++)
    await w.warden.evaluate({ model_id: TEMPLATE, current_elo: i % 2 ? 1500 : 1478, games_played: 400 });
  for (let k = 2; k < ROLLBACKS + 2; k++) {
    await w.warden.promote({ model_id: TEMPLATE, version: `v${k}`, elo: 1500 });
    await w.warden.evaluate({ model_id: TEMPLATE, current_elo: 1380, games_played: 400 });
    await w.warden.idle();
  }
  const names = natsNames(prefix);
  const kvm = new Kvm(nc);
  const actors = await kvm.open(names.actorBucket);
  const timelines = await kvm.open(names.timelineBucket);
  // At rest: healthy again, its rollbacks in its history, its timeline lines moved.
  for (let waited = 0; ; waited += 50) {
    const value = (await actors.get(`model.${TEMPLATE}`))!.json<{ timeline: []; history: [] }>();
    const history = (await w.warden.history({ model_id: TEMPLATE, limit: 1000 })).rollbacks.length;
    const healthy = w.warden.status(TEMPLATE).models[0]!.state === 'healthy';
    if (healthy && history === ROLLBACKS && value.timeline.length === 0 && value.history.length === 0) break;
    if (waited > 10_000) throw new Error('the template did not come to rest within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await w.stop();
  const registry = await kvm.open(names.registryBucket);
  const copies: Array<{ kv: typeof actors; key: string; text: string[] }> = [
    { kv: registry, key: TEMPLATE, text: (await registry.get(TEMPLATE))!.string().split(TEMPLATE) },
  ];
  // The model's value, timeline and history, in whichever bucket this build keeps each.
  for (const kv of [actors, timelines])
    for (const key of [`model.${TEMPLATE}`, `history.${TEMPLATE}`]) {
      const entry = await kv.get(key);
      if (entry?.operation === 'PUT') copies.push({ kv, key, text: entry.string().split(TEMPLATE) });
    }
  for (let start = 0; start < count; start += 1_000) {
    const writes: Array<Promise<unknown>> = [];
    for (let i = start; i < Math.min(start + 1_000, count); i++) {
      const id = `model_${i}`;
      for (const c of copies) writes.push(c.kv.put(c.key.split(TEMPLATE).join(id), c.text.join(id)));
    }
    await Promise.all(writes);
  }
}

/**
 * Until the input lease of `prefix` is free: a stopped instance deletes it, and a start that found it still
 * there would wait for it to expire (the lease's time to live), which is not what is measured here.
 */
async function leaseFree(nc: NatsConnection, prefix: string): Promise<void> {
  const leases = await new Kvm(nc).open(natsNames(prefix).leaseBucket);
  for (let i = 0; i < 500; i++) {
    const entry = await leases.get('inputs');
    if (!entry || entry.operation !== 'PUT') return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`the input lease of ${prefix} is still held 5 s after its instance stopped`);
}

interface Start {
  /** Until it takes inputs; until the last model's evaluation is applied; until every value is read. */
  readonly ms: number;
  readonly firstMs: number;
  readonly loadedMs: number;
  readonly heap: number;
  readonly resident: number;
}

async function measure(nc: NatsConnection, url: string, prefix: string, models: number): Promise<Start> {
  await leaseFree(nc, prefix);
  const before = heap();
  const t0 = performance.now();
  const w = await start(url, prefix);
  const ms = performance.now() - t0;
  if (models > 0)
    await w.warden.evaluate({ model_id: `model_${models - 1}`, current_elo: 1500, games_played: 400 });
  const firstMs = performance.now() - t0;
  await w.warden.whenLoaded();
  const loadedMs = performance.now() - t0;
  const after = heap();
  const resident = w.warden.residency().models;
  await w.stop();
  return { ms, firstMs, loadedMs, heap: after - before, resident };
}

async function main(): Promise<void> {
  await using server = await startNatsServer({});
  const nc = await connect({ servers: server.url });
  console.log(
    `bench:nats-memory: ${SIZES.map((n) => n.toLocaleString('en')).join(', ')} persisted models, ${ROUNDS} alternating rounds, nats-server ${nc.info?.version}, Node ${process.version}`,
  );
  const empty = 'memempty';
  await start(server.url, empty).then((w) => w.stop());
  for (const n of SIZES) {
    const prefix = `mem${n}`;
    const t0 = performance.now();
    await persist(nc, server.url, prefix, n);
    console.log(
      `${n.toLocaleString('en')} models (written in ${((performance.now() - t0) / 1000).toFixed(1)} s):`,
    );
    const full: Start[] = [];
    const bare: Start[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      full.push(await measure(nc, server.url, prefix, n));
      bare.push(await measure(nc, server.url, empty, 0));
    }
    console.log(
      `  start until it takes inputs: ${spread(
        full.map((f) => f.ms),
        'ms',
      )}; over an empty bucket ${spread(
        bare.map((b) => b.ms),
        'ms',
      )}`,
    );
    console.log(
      `  until the last model's evaluation is applied: ${spread(
        full.map((f) => f.firstMs),
        'ms',
      )}; until every value is read: ${spread(
        full.map((f) => f.loadedMs),
        'ms',
      )}`,
    );
    console.log(
      `  heap once started: ${spread(
        full.map((f) => f.heap / 1024 / n),
        'KiB per model',
        2,
      )} (${(median(full.map((f) => f.heap)) / 2 ** 20).toFixed(0)} MiB); model actors loaded at start: ${median(full.map((f) => f.resident))}`,
    );
  }
  await nc.close();
}

await main();
