/**
 * Group commit under faults: a backlog of one model's inputs (good and bad ones, duplicates, promotions
 * during a rollback) taken by the NATS intake in groups (one instance, or input partitions), with commits
 * refused mid-group, steps that throw, and a second instance taking over part-way, ends as the same inputs
 * taken one at a time by the embedded mode: the same model and training status, the same output event ids
 * (each once), every input acknowledged, each refusal published and counted once; and again after each
 * step of the clock over the timers (cooldown end, training auto-resume, approval expiry).
 * GROUP_FAULT_SEED=<printed seed> (and GROUP_FAULT_PATH) replays a run; GROUP_FAULT_RUNS runs more.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StateStore } from '../../src/actors/ports.ts';
import { interceptCommits } from '../support/commit-interceptor.ts';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import type { RuntimeObserver } from '../../src/actors/runtime.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { SqliteStore } from '../../src/embedded/sqlite-store.ts';
import { createWarden, type Warden } from '../../src/warden.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { HoldingBus } from '../support/holding-bus.ts';
import { makeDataDir } from '../support/test-warden.ts';

/** Partitioned runs use these prefixes, mapped by the server to PARTITIONS partitions. */
const PARTITIONS = 3;
const MAPPED = Array.from({ length: 200 }, (_, i) => `gfm${i}`);
const nats = useSharedNats({ partitions: Object.fromEntries(MAPPED.map((p) => [p, PARTITIONS])) });

const MODEL = 'gm';
/** Threshold detection, approvals for severe cases, and every timer short enough to step over. */
const CONFIG: ConfigInput = {
  detection: { mode: 'threshold' },
  approval: { requireForSevere: true, timeoutSeconds: 60 },
  cooldownSeconds: 30,
  training: { autoResumeSeconds: 45 },
  passivateAfterSeconds: null,
};

interface Input {
  readonly kind: string;
  /** The subject's model token. */
  readonly token: string;
  readonly raw: string;
}

/** The first `failFirst` commits of MODEL holding several inputs are refused, as a KV write refused would be. */
function failingStore(inner: StateStore, state: { failed: number }, failFirst: number): StateStore {
  return interceptCommits(inner, (part) => {
    const many = (part.timeline?.length ?? 0) > 1;
    if (part.actors[0]?.key !== MODEL || !many || state.failed >= failFirst) return null;
    state.failed++;
    return new Error('KV write refused');
  });
}

/** Processing the promotion of `version` throws its first `times` times (a bug in a step that passes). */
function throwingObserver(version: string | null, times: number): RuntimeObserver {
  let thrown = 0;
  return {
    outcome: (_kind, key, _event, outcome) => {
      if (key === MODEL && outcome.kind === 'promoted' && outcome.version === version && thrown < times) {
        thrown++;
        throw new Error('a bug in the step');
      }
    },
  };
}

const good = (i: number): fc.Arbitrary<Input> =>
  fc.oneof(
    fc
      .record({ v: fc.integer({ min: 1, max: 6 }), elo: fc.integer({ min: 1400, max: 1600 }) })
      .map(({ v, elo }) => ({
        kind: 'promotion',
        token: MODEL,
        raw: JSON.stringify({ event_id: `p${i}`, model_id: `${MODEL}_v${v}`, elo }),
      })),
    fc
      .record({ elo: fc.integer({ min: 1300, max: 1600 }), games: fc.constantFrom(20, 200) })
      .map(({ elo, games }) => ({
        kind: 'evaluation',
        token: MODEL,
        raw: JSON.stringify({ event_id: `e${i}`, model_id: MODEL, current_elo: elo, games_played: games }),
      })),
  );

const bad: fc.Arbitrary<Input> = fc.constantFrom(
  // A validation error, a subject naming another model, not JSON.
  { kind: 'evaluation', token: MODEL, raw: JSON.stringify({ model_id: MODEL, games_played: -1 }) },
  { kind: 'promotion', token: MODEL, raw: JSON.stringify({ model_id: 'other_v1', elo: 1500 }) },
  { kind: 'evaluation', token: MODEL, raw: 'not json' },
);

/** A backlog: good inputs, bad ones, and copies of earlier ones (the same event_id twice). */
const backlog: fc.Arbitrary<Input[]> = fc
  .array(fc.tuple(fc.nat(9), fc.nat()), { minLength: 4, maxLength: 30 })
  .chain((shape) =>
    fc
      .tuple(...shape.map(([what], i) => (what < 6 ? good(i) : what < 8 ? bad : fc.constant(null))))
      .map((drawn) => {
        const out: Input[] = [];
        drawn.forEach((input, i) => {
          if (input) out.push(input);
          else if (out.length > 0) out.push(out[shape[i]![1] % out.length]!);
        });
        return out;
      }),
  );

interface Ending {
  readonly model: unknown;
  readonly training: unknown;
  readonly eventIds: string[];
  readonly refusals: number;
}

function ending(warden: Warden, eventIds: string[], refusals: number): Ending {
  // The whole status: state, versions, production, approvals, cooldown, kept inputs, training pause.
  const status = warden.status();
  return {
    model: status.models,
    training: status.training,
    eventIds: [...eventIds].sort(),
    refusals,
  };
}

const actorTimers = (warden: Warden): number => {
  const { timersArmed, timersIndexed } = warden.residency();
  return timersArmed + timersIndexed;
};

/** A run the test compares: its ending now, and its clock moved on (timers due). */
interface Run {
  ending(): Promise<Ending>;
  advance(ms: number): Promise<void>;
  /** Fires the timers due now (one armed after its deadline passed, e.g. by an instance taking over). */
  tick(): void;
  /** Its actors' timers: armed on resident actors, and in the deadline index for the others. */
  timers(): number;
  /** Whether it writes every actor it knows of (holds their leases): only then its timers run. */
  owning(): boolean;
  /** Stops it; `progress` says which instance it is stopping. */
  close(progress?: Progress): Promise<void>;
}

const outputIds = (events: ReadonlyArray<{ subject: string; data: unknown }>): string[] =>
  events
    .filter((e) => e.subject.includes('.evt.') && !/\.evt\.(rejected|dead_letter)\./.test(e.subject))
    .map((e) => (e.data as { event_id: string }).event_id);

/** The same inputs, one at a time, each settled before the next, in the embedded mode. */
async function embedded(prefix: string, inputs: readonly Input[]): Promise<Run> {
  const dir = await makeDataDir();
  const store = new SqliteStore(join(dir, 'warden.db'));
  const bus = new HoldingBus();
  const clock = new ManualClock();
  let refusals = 0;
  const warden = await createWarden(parseConfig({ ...CONFIG, dataDir: dir, nats: { prefix } }), {
    clock,
    registry: store,
    bus,
    store,
    onRejected: () => refusals++,
  });
  const settle = () =>
    eventually(async () => {
      await warden.idle();
      expect(warden.status().models.filter((m) => m.state === 'rollingBack')).toEqual([]);
      await warden.idle();
    });
  const close = async () => {
    await warden.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const input of inputs) {
      let data: unknown;
      try {
        data = JSON.parse(input.raw);
      } catch {
        data = undefined;
      }
      await warden.ingest(`${prefix}.in.${input.kind}.${input.token}`, data, input.raw);
      await settle();
    }
  } catch (error) {
    await close();
    throw error;
  }
  return {
    ending: async () => ending(warden, outputIds(bus.log), refusals),
    advance: async (ms) => {
      clock.advance(ms);
      await settle();
    },
    tick: () => clock.advance(0),
    timers: () => actorTimers(warden),
    owning: () => true,
    close,
  };
}

interface Faults {
  /** The first this many commits of the model holding several inputs are refused. */
  readonly commitFailures: number;
  /** The promotion of this version throws when processed, its first `throws` times. */
  readonly throwVersion: string | null;
  readonly throws: number;
  readonly partitioned: boolean;
  /** A second instance takes over (an orderly stop of the first) once this many inputs are acknowledged. */
  readonly handOverAfter: number | null;
}

let runs = 0;

/** Every input of the stream acknowledged by the intakes (one, or one per partition). */
async function drained(prefix: string, faults: Faults): Promise<void> {
  const stream = `${prefix.toUpperCase()}_IN`;
  const durables = faults.partitioned
    ? Array.from({ length: PARTITIONS }, (_, k) => `${prefix}_inputs_${k}`)
    : [`${prefix}_inputs`];
  await eventually(async () => {
    for (const durable of durables) {
      const info = await nats.client.jsm.consumers.info(stream, durable);
      expect(info.num_pending + info.num_ack_pending).toBe(0);
    }
  });
}

async function acknowledged(prefix: string, faults: Faults): Promise<number> {
  const stream = `${prefix.toUpperCase()}_IN`;
  const durables = faults.partitioned
    ? Array.from({ length: PARTITIONS }, (_, k) => `${prefix}_inputs_${k}`)
    : [`${prefix}_inputs`];
  let n = 0;
  for (const durable of durables) {
    const info = await nats.client.jsm.consumers.info(stream, durable).catch(() => null);
    n += info?.ack_floor.consumer_seq ?? 0;
  }
  return n;
}

async function viaNats(
  inputs: readonly Input[],
  faults: Faults,
  progress: Progress,
): Promise<{ prefix: string; run: Run }> {
  const n = runs++;
  const prefix = faults.partitioned ? MAPPED[n]! : `gfs${n}`;
  const upper = prefix.toUpperCase();
  const config = { ...CONFIG, nats: { prefix, partitions: faults.partitioned ? PARTITIONS : 1 } };
  progress.at = 'creating the streams';
  const first = await startNatsWarden(nats.server.url, { config });
  await first.stop();
  progress.at = 'publishing the inputs';
  for (const input of inputs)
    await nats.client.publish(`${prefix}.in.${input.kind}.${input.token}`, input.raw);
  const state = { failed: 0 };
  const clock = new ManualClock();
  progress.at = 'starting the first instance';
  const a = await startNatsWarden(nats.server.url, {
    config,
    clock,
    hooks: { retry: { maxDeliveries: 3, baseDelayMs: 5, maxDelayMs: 20 } },
    observer: throwingObserver(faults.throwVersion, faults.throws),
    wrapStore: (store) => failingStore(store, state, faults.commitFailures),
  });
  const instances = [a];
  let w = a;
  let takerClock = clock;
  try {
    if (faults.handOverAfter !== null) {
      progress.at = 'waiting for the inputs before the hand-over';
      await eventually(async () =>
        expect(await acknowledged(prefix, faults)).toBeGreaterThanOrEqual(
          Math.min(faults.handOverAfter!, inputs.length),
        ),
      );
      // The second instance starts (partitioned: it asks for its share of the partitions) and the first
      // stops at once, whatever it has in hand.
      const clockB = new ManualClock();
      progress.at = 'starting the second instance';
      const b = await startNatsWarden(nats.server.url, { config, clock: clockB });
      instances.push(b);
      progress.at = 'stopping the first instance';
      await a.stop();
      w = b;
      takerClock = clockB;
    }
    progress.at = 'waiting for every input to be acknowledged';
    await drained(prefix, faults);
    progress.at = 'waiting for the instance to settle';
    await w.settled();
  } catch (error) {
    for (const i of instances) await i.stop();
    throw error;
  }
  const taker = w;
  return {
    prefix,
    run: {
      ending: async () => {
        await taker.settled();
        const events = await nats.client.stored(`${prefix}.evt.>`, `${upper}_EVENTS`);
        const rejected = events.filter((e) => e.subject.includes('.evt.rejected.'));
        // Each refusal once, under the place of its input; nothing dead-lettered (every fault passes).
        expect(new Set(rejected.map((e) => e.msgId)).size).toBe(rejected.length);
        expect(events.filter((e) => e.subject.includes('.evt.dead_letter.'))).toEqual([]);
        const ids = outputIds(events);
        expect(new Set(ids).size).toBe(ids.length);
        let refusals = 0;
        for (const i of instances) for (const count of i.rejected.values()) refusals += count;
        expect(refusals).toBe(rejected.length);
        return ending(taker.warden, ids, refusals);
      },
      advance: async (ms) => {
        takerClock.advance(ms);
        await taker.settled();
      },
      tick: () => takerClock.advance(0),
      timers: () => actorTimers(taker.warden),
      owning: () => {
        const { models, training } = taker.warden.status();
        const owns = (kind: 'model' | 'training', key: string) =>
          taker.adapters.store.owns?.(kind, key) ?? true;
        return (
          models.every((m) => owns('model', m.model_id)) &&
          training.every((c) => owns('training', c.config_key))
        );
      },
      close: async (progress) => {
        for (const [k, i] of instances.entries()) {
          const at = `closing the NATS instances: stopping instance ${k + 1} of ${instances.length}`;
          await i.stop((step) => progress && (progress.at = `${at}, ${step}`));
        }
      },
    },
  };
}

const faults: fc.Arbitrary<Faults> = fc.record({
  commitFailures: fc.nat(2),
  throwVersion: fc.option(
    fc.integer({ min: 1, max: 6 }).map((v) => `v${v}`),
    { nil: null },
  ),
  throws: fc.integer({ min: 1, max: 2 }),
  partitioned: fc.boolean(),
  handOverAfter: fc.option(fc.nat(20), { nil: null, freq: 4 }),
});

/** Where a run is, so that one over its budget says where it stopped, and what failed before, if anything. */
interface Progress {
  at: string;
  failed?: unknown;
}

/**
 * Runs `body`, failing with where it was once it has taken `ms`: a run that hangs fails as itself (fast-check
 * prints its seed and path) instead of as the whole test's timeout, which says nothing.
 */
async function withinBudget(ms: number, body: (progress: Progress) => Promise<void>): Promise<void> {
  const progress: Progress = { at: 'starting' };
  let timer: NodeJS.Timeout | undefined;
  const over = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const failed = progress.failed === undefined ? '' : `, after it failed: ${String(progress.failed)}`;
      reject(new Error(`the run took over ${ms} ms; it was at: ${progress.at}${failed}`));
    }, ms);
  });
  try {
    await Promise.race([body(progress), over]);
  } finally {
    clearTimeout(timer);
  }
}

const RUNS = Number(process.env.GROUP_FAULT_RUNS ?? 8);
/**
 * A run takes 0.2 s, or 2.7 to 7 s when a second instance takes over (its start waits, bounded, for the
 * input lease and for its share of the partitions, which the first holds until it stops), on a loaded
 * machine too; the rest of the budget is for a slower machine.
 */
const RUN_BUDGET_MS = 30_000;

/** Steps of the clock past the timers' deadlines: cooldown 30 s, auto-resume 45 s, approval 60 s. */
const steps = fc.array(fc.constantFrom(10_000, 31_000, 46_000, 61_000), { maxLength: 3 });

describe('group commit under faults, against the embedded mode one input at a time', () => {
  it('counts a refusal in a group whose commit fails once, though the group goes again one at a time', async () => {
    const prefix = 'gfx';
    const upper = prefix.toUpperCase();
    const first = await startNatsWarden(nats.server.url, { config: { nats: { prefix } } });
    await first.stop();
    for (let v = 1; v <= 10; v++) {
      // Refused by Warden (the payload names another model) and by the transport (no such input kind).
      if (v === 4) await nats.client.publish(`${prefix}.in.promotion.gm`, { model_id: 'other_v1', elo: 1 });
      if (v === 6) await nats.client.publish(`${prefix}.in.foo.gm`, { model_id: 'gm' });
      await nats.client.publish(`${prefix}.in.promotion.gm`, { event_id: `p${v}`, model_id: `gm_v${v}` });
    }
    const state = { failed: 0 };
    await using w = await startNatsWarden(nats.server.url, {
      config: { nats: { prefix } },
      wrapStore: (store) => failingStore(store, state, 1),
    });
    await eventually(async () => {
      const info = await nats.client.jsm.consumers.info(`${upper}_IN`, `${prefix}_inputs`);
      expect(info.ack_floor.stream_seq).toBe(12);
    });
    await w.settled();
    expect(state.failed).toBe(1);
    expect(w.warden.status('gm').models[0]!.versions).toHaveLength(10);
    const refusals = await nats.client.stored(`${prefix}.evt.rejected.>`, `${upper}_EVENTS`);
    expect(refusals.map((r) => r.subject).sort()).toEqual([
      `${prefix}.evt.rejected.promotion`,
      `${prefix}.evt.rejected.unknown`,
    ]);
    expect(Object.fromEntries(w.rejected)).toEqual({ promotion: 1, unknown: 1 });
  });

  it(
    'ends the same: state, output events once each, refusals published and counted once',
    async () => {
      const seed = Number(process.env.GROUP_FAULT_SEED ?? Date.now() % 2 ** 31);
      console.log(`group-fault property seed: ${seed}`);
      await fc.assert(
        fc.asyncProperty(backlog, faults, steps, (inputs, f, advances) =>
          withinBudget(RUN_BUDGET_MS, async (progress) => {
            const got = await viaNats(inputs, f, progress);
            try {
              progress.at = 'the same inputs in the embedded mode';
              const want = await embedded(got.prefix, inputs);
              try {
                progress.at = 'comparing the endings';
                expect(await got.run.ending()).toEqual(await want.ending());
                // An instance that took over runs the timers of what it writes, once it holds their leases: the
                // steps below start once it does, and knows their deadlines (a timer due before then would
                // fire when the lease is held, after its deadline on this clock).
                await eventually(() => {
                  expect(got.run.owning()).toBe(true);
                  expect(got.run.timers()).toBeGreaterThanOrEqual(want.timers());
                });
                for (const ms of advances) {
                  progress.at = `a step of the clock by ${ms} ms`;
                  await got.run.advance(ms);
                  await want.advance(ms);
                  const expected = await want.ending();
                  // The rollback's pause reaches the training config after the rollback's commit.
                  await eventually(async () => {
                    got.run.tick();
                    expect(await got.run.ending()).toEqual(expected);
                  });
                }
              } catch (error) {
                progress.failed = error;
                throw error;
              } finally {
                progress.at = 'closing the embedded run';
                await want.close();
              }
            } finally {
              progress.at = 'closing the NATS instances';
              await got.run.close(progress);
            }
          }),
        ),
        {
          seed,
          numRuns: RUNS,
          endOnFailure: true,
          ...(process.env.GROUP_FAULT_PATH ? { path: process.env.GROUP_FAULT_PATH } : {}),
        },
      );
    },
    RUNS * RUN_BUDGET_MS,
  );
});
