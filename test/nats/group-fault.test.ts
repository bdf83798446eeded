/**
 * Group commit under faults: a backlog of one model's inputs (good and bad ones, duplicates, promotions
 * during a rollback) taken by the NATS intake in groups, with commits refused mid-group and inputs whose
 * processing throws, ends as the same inputs taken one at a time by the embedded mode: the same model and
 * training state, the same output events (each once), every input acknowledged, each refusal published
 * and counted once.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CommitBatch, PartResult, StateStore } from '../../src/actors/ports.ts';
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

const nats = useSharedNats();

const MODEL = 'gm';
const CONFIG: ConfigInput = { detection: { mode: 'threshold' } };

interface Input {
  readonly kind: string;
  /** The subject's model token. */
  readonly token: string;
  readonly raw: string;
}

/** The first `failFirst` commits of MODEL holding several inputs are refused, as a KV write refused would be. */
function failingStore(inner: StateStore, state: { failed: number }, failFirst: number): StateStore {
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'commitEach') {
        return (parts: readonly CommitBatch[]): Promise<PartResult[]> =>
          Promise.all(
            parts.map(async (part): Promise<PartResult> => {
              const many = (part.timeline?.length ?? 0) > 1;
              if (part.actors[0]?.key === MODEL && many && state.failed < failFirst) {
                state.failed++;
                return { ok: false, error: new Error('KV write refused') };
              }
              const [result] = await target.commitEach!([part]);
              return result!;
            }),
          );
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
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

/** The same inputs, one at a time, each settled before the next, in the embedded mode. */
async function embedded(prefix: string, inputs: readonly Input[]): Promise<Ending> {
  const dir = await makeDataDir();
  const store = new SqliteStore(join(dir, 'warden.db'));
  const bus = new HoldingBus();
  let refusals = 0;
  const warden = await createWarden(parseConfig({ ...CONFIG, dataDir: dir, nats: { prefix } }), {
    clock: new ManualClock(),
    registry: store,
    bus,
    store,
    onRejected: () => refusals++,
  });
  try {
    for (const input of inputs) {
      let data: unknown;
      try {
        data = JSON.parse(input.raw);
      } catch {
        data = undefined;
      }
      await warden.ingest(`${prefix}.in.${input.kind}.${input.token}`, data, input.raw);
      await eventually(async () => {
        await warden.idle();
        expect(warden.status().models.filter((m) => m.state === 'rollingBack')).toEqual([]);
      });
    }
    await warden.idle();
    const ids = bus.log
      .filter((m) => !/\.evt\.(rejected|dead_letter)\./.test(m.subject) && m.subject.includes('.evt.'))
      .map((m) => (m.data as { event_id: string }).event_id);
    return ending(warden, ids, refusals);
  } finally {
    await warden.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

let runs = 0;

async function viaNats(
  inputs: readonly Input[],
  faults: { commitFailures: number; throwVersion: string | null; throws: number },
): Promise<{ prefix: string; ending: Ending; failed: number }> {
  const prefix = `gfp${runs++}`;
  const upper = prefix.toUpperCase();
  const first = await startNatsWarden(nats.server.url, { config: { ...CONFIG, nats: { prefix } } });
  await first.stop();
  for (const input of inputs)
    await nats.client.publish(`${prefix}.in.${input.kind}.${input.token}`, input.raw);
  const state = { failed: 0 };
  const w = await startNatsWarden(nats.server.url, {
    config: { ...CONFIG, nats: { prefix } },
    clock: new ManualClock(),
    hooks: { retry: { maxDeliveries: 3, baseDelayMs: 5, maxDelayMs: 20 } },
    observer: throwingObserver(faults.throwVersion, faults.throws),
    wrapStore: (store) => failingStore(store, state, faults.commitFailures),
  });
  try {
    await eventually(async () => {
      const info = await nats.client.jsm.consumers.info(`${upper}_IN`, `${prefix}_inputs`);
      expect(info.ack_floor.stream_seq).toBe(inputs.length);
      expect(info.num_ack_pending).toBe(0);
    });
    await w.settled();
    const events = await nats.client.stored(`${prefix}.evt.>`, `${upper}_EVENTS`);
    const rejected = events.filter((e) => e.subject.includes('.evt.rejected.'));
    // Each refusal once, under the place of its input.
    expect(new Set(rejected.map((e) => e.msgId)).size).toBe(rejected.length);
    expect(events.filter((e) => e.subject.includes('.evt.dead_letter.'))).toEqual([]);
    const ids = events
      .filter((e) => !/\.evt\.(rejected|dead_letter)\./.test(e.subject))
      .map((e) => (e.data as { event_id: string }).event_id);
    expect(new Set(ids).size).toBe(ids.length);
    let refusals = 0;
    for (const n of w.rejected.values()) refusals += n;
    expect(refusals).toBe(rejected.length);
    return { prefix, ending: ending(w.warden, ids, refusals), failed: state.failed };
  } finally {
    await w.stop();
  }
}

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

  it('ends the same: state, output events once each, refusals published and counted once', async () => {
    const seed = Number(process.env.GROUP_FAULT_SEED ?? Date.now() % 2 ** 31);
    console.log(`group-fault property seed: ${seed}`);
    await fc.assert(
      fc.asyncProperty(
        backlog,
        fc.nat(2),
        fc.option(fc.integer({ min: 1, max: 6 }), { nil: null }),
        fc.integer({ min: 1, max: 2 }),
        async (inputs, commitFailures, throwAt, throws) => {
          const faults = { commitFailures, throwVersion: throwAt === null ? null : `v${throwAt}`, throws };
          const got = await viaNats(inputs, faults);
          const want = await embedded(got.prefix, inputs);
          expect(got.ending).toEqual(want);
        },
      ),
      { seed, numRuns: 12, endOnFailure: true },
    );
  }, 120_000);
});
