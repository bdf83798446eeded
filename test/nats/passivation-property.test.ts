/**
 * Passivation is invisible in NATS mode too: the same random run of inputs, commands and time, once with
 * actors passivated after a few idle seconds and once with every actor resident, on two prefixes of one
 * nats-server, gives the same answers, the same states, the same registry pointers (each in line with its
 * model) and the same events (per actor, in order). The passivated actors come back from the KV store's copy
 * of the bucket, their timers from the deadline index.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import type { ModelRegistry, StateStore } from '../../src/actors/ports.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { WardenError } from '../../src/domain/errors.ts';
import { startNatsWarden, type NatsWarden } from '../harness/nats-warden.ts';
import { interceptCommits } from '../support/commit-interceptor.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { actorOfKind, answer, expectCountsAsListed, step, type Step } from '../support/passivation-steps.ts';
import { registryWith } from '../support/registry-with.ts';

const nats = useSharedNats();

const IDLE_S = 10;
/** How long the runtime waits before trying a failed effect again (TIMER_RETRY_MS in the runtime). */
const RETRY_MS = 1_000;
/**
 * The input lease is renewed on the wall clock, the actors' time is the manual clock's. With the tests'
 * 2 s lease, a process starved of CPU (the whole suite on two cores) can let the lease lapse for a moment,
 * and a timer that fires then, on an actor this instance does not hold, is put off by a second of manual
 * time in one run and not in the other. A failure seen once in CI fits that (a cooldown ended in the
 * passivating run and not yet in the resident one, 327 s of manual time after the rollback; it did not
 * recur in 320 runs here, nor with its seed). The property is about passivation: its lease does not lapse.
 */
const LEASE_TTL_MS = 60_000;
const CONFIG: ConfigInput = {
  detection: { mode: 'threshold' },
  approval: { requireForSevere: true, timeoutSeconds: 60, onTimeout: 'rollback' },
  cooldownSeconds: 120,
  training: { autoResumeSeconds: 300 },
};

/** Each actor's events as stored, in order (what Warden promises is the order per actor). */
async function eventsPerActor(prefix: string): Promise<Map<string, unknown[]>> {
  const perActor = new Map<string, unknown[]>();
  for (const m of await nats.client.stored(`${prefix}.evt.>`, `${prefix.toUpperCase()}_EVENTS`)) {
    const [, , kind, key] = m.subject.split('.');
    const actor = `${actorOfKind.get(kind!) ?? kind}:${key}`;
    perActor.set(actor, [...(perActor.get(actor) ?? []), [kind, m.data]]);
  }
  return perActor;
}

/**
 * Each model's registry pointer (version and reason), checked against its committed state: a model that is
 * not rolling back has its production version in the registry, whatever commit failed on the way.
 */
async function pointersInLine(w: NatsWarden, prefix: string): Promise<Record<string, unknown>> {
  const pointers: Record<string, unknown> = {};
  for (const model of w.warden.status().models) {
    const pointer = await nats.client.kv<{ version: string; reason: string }>(
      `${prefix}_registry`,
      model.model_id,
    );
    if (model.state !== 'rollingBack' && model.production_version !== null)
      expect(pointer?.version, `${model.model_id}'s pointer`).toBe(model.production_version);
    pointers[model.model_id] = pointer && { version: pointer.version, reason: pointer.reason };
  }
  return pointers;
}

/**
 * Moves the clock on by `ms` one deadline at a time, settling after each: what a timer started (a rollback,
 * its commit, a registry retry) ends before the next timer fires, as it would in real time. Advancing the
 * whole way at once fired every due timer in one synchronous pass, so a later timer could find an earlier
 * one's work unfinished in one run and finished in the other.
 */
async function advanceSettling(clock: ManualClock, ms: number, settle: () => Promise<void>): Promise<void> {
  const target = clock.now() + ms;
  for (let turns = 0; ; turns++) {
    const next = clock.nextDue();
    const due = next !== null && next <= target;
    if (!due && clock.now() === target) return;
    if (turns > 1_000) throw new Error('timers kept falling due: more than 1,000 in one step');
    clock.advance((due ? next : target) - clock.now());
    await settle();
  }
}

/**
 * Runs the steps; every answer (or error code) is recorded, and the counts checked after each step.
 * `settle` waits for what a step started.
 */
async function run(
  w: NatsWarden,
  clock: ManualClock,
  steps: readonly Step[],
  settle: () => Promise<void>,
): Promise<unknown[]> {
  const answers: unknown[] = [];
  for (const s of steps) {
    if (s.kind === 'advance') await advanceSettling(clock, s.ms, settle);
    else answers.push(await answer(w.warden, s));
    await settle();
    expectCountsAsListed(w.warden);
  }
  return answers;
}

/** The registry calls in flight, and how many were ever started. */
interface RegistryCalls {
  readonly inFlight: Set<Promise<unknown>>;
  started: number;
}

/** The registry, with its calls kept in `calls`. */
function tracked(registry: ModelRegistry, calls: RegistryCalls): ModelRegistry {
  return new Proxy(registry, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (result instanceof Promise) {
          calls.started++;
          calls.inFlight.add(result);
          result.then(
            () => calls.inFlight.delete(result),
            () => calls.inFlight.delete(result),
          );
        }
        return result;
      };
    },
  });
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Waits for a quiet moment: Warden idle, no registry call in flight, and none started meanwhile. Warden's
 * idle() does not wait for registry calls, and the answer of one starts a dispatch (a rollback's result)
 * that idle() did not see: a state read in between is one whose commit has not yet succeeded or failed.
 */
async function quiet(w: NatsWarden, calls: RegistryCalls): Promise<void> {
  for (let i = 0; i < 100; i++) {
    await Promise.allSettled([...calls.inFlight]);
    await nextTurn(); // what an answer started is tracked by now
    if (calls.inFlight.size > 0) continue;
    const started = calls.started;
    await w.warden.idle();
    await nextTurn(); // a committed rollback calls the registry once the model's earlier calls are done
    if (calls.started === started) return;
  }
  throw new Error('Warden never went quiet: registry calls kept starting');
}

/**
 * Settles Warden when a refused commit left something to be tried again a second later (a rollback whose
 * result was not stored): once quiet, the manual clock moves on by that second, as time would.
 */
async function settleThroughRetries(w: NatsWarden, clock: ManualClock, calls: RegistryCalls) {
  for (let i = 0; i < 10; i++) {
    await quiet(w, calls);
    if (!w.warden.status().models.some((m) => m.state === 'rollingBack')) break;
    clock.advance(RETRY_MS);
  }
  await w.settled();
}

/**
 * A registry fault: the `nth` promotion write of `model` is refused (its pointer lags until brought in line),
 * or the first `reads` reads of its pointer (its attempts to bring it in line fail, each next one waiting
 * twice as long). Counted per model, so that both runs refuse the same calls.
 */
type RegistryFault =
  | { readonly call: 'recordPromotion'; readonly model: string; readonly nth: number }
  | { readonly call: 'production'; readonly model: string; readonly reads: number };
const model = fc.constantFrom('m0', 'm1', 'm2');
const registryFault: fc.Arbitrary<RegistryFault> = fc.oneof(
  fc.record({ call: fc.constant('recordPromotion' as const), model, nth: fc.nat(2) }),
  fc.record({ call: fc.constant('production' as const), model, reads: fc.integer({ min: 1, max: 2 }) }),
);

/** The registry with `faults` applied, counted per model (the same in both runs). */
function faultyRegistry(inner: ModelRegistry, faults: readonly RegistryFault[], fired: { count: number }) {
  const calls = new Map<string, number>();
  const refuse = (call: RegistryFault['call'], modelId: string): void => {
    const nth = calls.get(`${call}:${modelId}`) ?? 0;
    calls.set(`${call}:${modelId}`, nth + 1);
    const matches = (f: RegistryFault) =>
      f.call === call && f.model === modelId && (f.call === 'production' ? nth < f.reads : f.nth === nth);
    if (faults.some(matches)) {
      fired.count++;
      throw new Error(`registry refused the ${call === 'production' ? 'read' : 'write'}`);
    }
  };
  return registryWith(inner, {
    recordPromotion: async (modelId, version, at, reason) => {
      refuse('recordPromotion', modelId);
      return inner.recordPromotion(modelId, version, at, reason);
    },
    production: async (modelId) => {
      refuse('production', modelId);
      return inner.production(modelId);
    },
  });
}

/**
 * A commit fault: the `nth` commit of `actor` writes nothing, and is refused (the runtime knows nothing
 * landed) or goes unanswered (the request never reached NATS, but the runtime cannot know: its outcome is in
 * doubt until it reads what is stored). A write that lands and loses its answer is the watch's to report,
 * and is tested over a connection really cut (lost-reply.test.ts, lost-reply-kill.test.ts).
 */
interface Fault {
  readonly actor: string;
  readonly nth: number;
  readonly kind: 'refused' | 'unanswered';
}
const fault: fc.Arbitrary<Fault> = fc.record({
  actor: fc.oneof(
    { arbitrary: fc.constantFrom('model:m0', 'model:m1', 'model:m2'), weight: 3 },
    { arbitrary: fc.constantFrom('training:m0', 'training:m1', 'training:m2'), weight: 1 },
  ),
  nth: fc.nat(3),
  kind: fc.constantFrom('refused' as const, 'unanswered' as const),
});

/** The store with `faults` applied to its commits, counted per actor (the same in both runs). */
function faulty(inner: StateStore, faults: readonly Fault[], fired: { count: number }): StateStore {
  const commits = new Map<string, number>();
  return interceptCommits(inner, (part) => {
    const actor = `${part.actors[0]!.kind}:${part.actors[0]!.key}`;
    const nth = commits.get(actor) ?? 0;
    commits.set(actor, nth + 1);
    const f = faults.find((x) => x.actor === actor && x.nth === nth);
    if (!f) return null;
    fired.count++;
    return f.kind === 'refused'
      ? new Error('KV write refused')
      : { error: new WardenError('unavailable', 'no answer', { retryable: true }), outcomeUnknown: true };
  });
}

let runs = 0;

/**
 * The same steps (with the same commit and registry faults) twice, on two prefixes: every actor resident,
 * then idle actors passivated after IDLE_S. Each run's answers, status, registry pointers, per-actor events
 * and passivation count.
 */
async function residentThenPassivating(
  steps: readonly Step[],
  faults: readonly Fault[] = [],
  registryFaults: readonly RegistryFault[] = [],
) {
  const n = runs++;
  const fired = { count: 0 };
  const results = [];
  for (const passivate of [null, IDLE_S]) {
    const prefix = `pprop${n}${passivate === null ? 'r' : 'p'}`;
    const clock = new ManualClock();
    const calls: RegistryCalls = { inFlight: new Set(), started: 0 };
    await using w = await startNatsWarden(nats.server.url, {
      config: { ...CONFIG, passivateAfterSeconds: passivate, nats: { prefix } },
      clock,
      wrapStore: (store) => faulty(store, faults, fired),
      wrapRegistry: (registry) => tracked(faultyRegistry(registry, registryFaults, fired), calls),
      hooks: { jetstream: { leaseTtlMs: LEASE_TTL_MS } },
    });
    const settle = () => settleThroughRetries(w, clock, calls);
    const answers = await run(w, clock, steps, settle);
    // A promotion write refused is brought in line a second later, then after 2 s, 4 s... while refused
    // (at most three registry faults: a write and two reads).
    for (const ms of [RETRY_MS, 2 * RETRY_MS, 4 * RETRY_MS]) await advanceSettling(clock, ms, settle);
    results.push({
      answers,
      status: w.warden.status(),
      pointers: await pointersInLine(w, prefix),
      events: await eventsPerActor(prefix),
      passivated: w.warden.residency().passivated,
    });
  }
  const [resident, passivating] = results as [(typeof results)[0], (typeof results)[0]];
  return { resident, passivating, faultsFired: fired.count };
}

/** What a user sees is the same, passivated or not. */
function expectSameSeen(
  passivating: { answers: unknown; status: unknown; pointers: unknown; events: unknown },
  resident: { answers: unknown; status: unknown; pointers: unknown; events: unknown },
): void {
  expect(passivating.answers).toEqual(resident.answers);
  expect(passivating.status).toEqual(resident.status);
  expect(passivating.pointers).toEqual(resident.pointers);
  expect(passivating.events).toEqual(resident.events);
}

describe('passivation in NATS mode is invisible', () => {
  it('an actor passivated and revived gives the same answers, states and events as one never passivated', async () => {
    let passivatedRuns = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 10, maxLength: 30 }), async (steps) => {
        const { resident, passivating } = await residentThenPassivating(steps);
        expect(resident.passivated).toBe(0);
        if (passivating.passivated > 0) passivatedRuns++;
        expectSameSeen(passivating, resident);
      }),
      { numRuns: 40 },
    );
    // The property means something only if actors were passivated (and revived) in most runs.
    expect(passivatedRuns).toBeGreaterThan(5);
  }, 240_000);

  /**
   * Found by this property: an auto-resume whose commit was refused is tried again a second later; the
   * config, passivated meanwhile, was woken by the deadline index at its deadline gone by, not when the
   * retry was due (the resume came 1 ms earlier than with the config resident).
   */
  const retryPutOffThenPassivated: [Step[], Fault[]] = [
    [
      { kind: 'promote', model: 0, version: 0, elo: 1500 },
      { kind: 'promote', model: 0, version: 1, elo: 1500 },
      { kind: 'evaluate', model: 0, elo: 1400, games: 50 },
      { kind: 'advance', ms: 148_136 },
      { kind: 'advance', ms: 295_865 },
      { kind: 'promote', model: 0, version: 0, elo: 1500 },
      { kind: 'advance', ms: 188_708 },
    ],
    [{ actor: 'training:m0', nth: 1, kind: 'refused' }],
  ];

  it('and so it is when commits are refused or go unanswered, and registry writes and reads are refused', async () => {
    let faultedRuns = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 10, maxLength: 30 }),
        fc.array(fault, { minLength: 1, maxLength: 6 }),
        fc.array(registryFault, { maxLength: 3 }),
        async (steps, faults, registryFaults) => {
          const { resident, passivating, faultsFired } = await residentThenPassivating(
            steps,
            faults,
            registryFaults,
          );
          if (faultsFired > 0) faultedRuns++;
          expectSameSeen(passivating, resident);
        },
      ),
      { numRuns: 40, examples: [[...retryPutOffThenPassivated, []]] },
    );
    // The property means something only if faults fired in most runs.
    expect(faultedRuns).toBeGreaterThan(10);
  }, 240_000);
});
