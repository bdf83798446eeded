/**
 * Timers fired early, on time and late, across restarts (issue 8, finding 1): every approval expires, every
 * cooldown ends and every auto-resume happens, each exactly once. Node's setTimeout often fires about a
 * millisecond before its deadline by the clock the machine reads; the manual clock's skew plays that.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { startTestWarden, type TestWarden } from '../support/test-warden.ts';
import type { BusMessage } from '../../src/actors/ports.ts';

const CONFIG: ConfigInput = {
  detection: { mode: 'threshold' },
  approval: { requireForSevere: true, timeoutSeconds: 60, onTimeout: 'rollback' },
  cooldownSeconds: 120,
  training: { autoResumeSeconds: 300 },
};

let tw: TestWarden | null = null;
afterEach(async () => {
  await tw?.close();
  tw = null;
});

/** Everything published, across restarts (each instance has its own bus). */
function collector() {
  const seen: BusMessage[] = [];
  let instance: TestWarden | null = null;
  return {
    seen,
    track(t: TestWarden) {
      if (instance) seen.push(...instance.bus.log);
      instance = t;
    },
    all(): BusMessage[] {
      return [...seen, ...(instance?.bus.log ?? [])];
    },
  };
}

function count(messages: BusMessage[], kind: string, key: (m: BusMessage) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of messages.filter((m) => m.subject.split('.')[2] === kind)) {
    counts.set(key(m), (counts.get(key(m)) ?? 0) + 1);
  }
  return counts;
}

const modelOf = (m: BusMessage) => (m.data as { model_id: string }).model_id;
const configOf = (m: BusMessage) => (m.data as { config_key: string }).config_key;

async function severeApproval(t: TestWarden, model: string): Promise<void> {
  for (const version of ['v1', 'v2']) await t.warden.promote({ model_id: model, version, elo: 1500 });
  const result = await t.warden.evaluate({ model_id: model, current_elo: 1440, games_played: 100 });
  expect(result.state).toBe('awaitingApproval');
}

describe('timers never get stuck', () => {
  it('a timer that fires 1 ms early by the runtime clock still expires the approval (regression)', async () => {
    // Every timer of more than a few ms fires 1 ms before its deadline; the short re-arm fires on time.
    const clock = new ManualClock(Date.UTC(2026, 0, 1), { skew: (delay) => (delay > 5 ? -1 : 0) });
    tw = await startTestWarden(CONFIG, { clock });
    tw.registry.autoSettle = true;
    await severeApproval(tw, 'm1');
    for (let i = 0; i < 10; i++) {
      clock.advance(60_000);
      await tw.warden.idle();
    }
    expect(tw.warden.status('m1').models[0]!.state).toBe('healthy');
    expect(count(tw.bus.log, 'promotion_rolled_back', modelOf).get('m1')).toBe(1);
    expect(tw.warden.trainingStatus('m1').status).toBe('running');
    expect(count(tw.bus.log, 'training_resumed', configOf).get('m1')).toBe(1);
  });

  it('a timer that is due acts before anything else reaches its actor, however late its platform timer comes', async () => {
    // Every timer of more than a few ms fires 10 s late (a busy event loop, an actor brought back after its
    // deadline, an instance still reading every actor's value).
    const clock = new ManualClock(Date.UTC(2026, 0, 1), { skew: (delay) => (delay > 5 ? 10_000 : 0) });
    tw = await startTestWarden(CONFIG, { clock });
    tw.registry.autoSettle = true;
    const expiredAlerts = () =>
      tw!.bus.log.filter((m) => (m.data as { kind?: string }).kind === 'approval_expired').length;
    await severeApproval(tw, 'late');
    clock.advance(61_000); // past the deadline (60 s); the platform timer is due at 70 s
    expect(expiredAlerts()).toBe(0);
    // The approval expired (onTimeout: rollback) before the operator's came: refused as after any expiry.
    await expect(tw.warden.approve('late', { by: 'oncall' })).rejects.toMatchObject({
      name: 'NoPendingApprovalError',
    });
    await tw.warden.idle();
    expect(expiredAlerts()).toBe(1);
    const rolledBack = tw.bus.log.filter((m) => m.subject.includes('.promotion_rolled_back.'));
    expect(rolledBack.map((m) => (m.data as { triggered_by: string }).triggered_by)).toEqual([
      'approval_expired',
    ]);
    // A cooldown that is over (120 s) lets the next evaluation be judged as any other, not as one in cooldown.
    clock.advance(121_000);
    const judged = await tw.warden.evaluate({ model_id: 'late', current_elo: 1500, games_played: 100 });
    expect(judged.outcome.kind).toBe('healthy');
    expect(judged.state).toBe('healthy');
    // The training config's auto-resume (300 s after the pause) is due: an operator's resume finds it done.
    clock.advance(185_000);
    await expect(tw.warden.resume('late', { by: 'oncall' })).rejects.toMatchObject({ name: 'ConflictError' });
    await tw.warden.idle();
    const resumed = tw.bus.log.filter((m) => m.subject.includes('.training_resumed.'));
    expect(resumed.map((m) => (m.data as { by: string }).by)).toEqual(['warden']);
  });

  it('however late timers fire, no approval or rejection is taken after its deadline, and each request ends once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 20_000 }),
        fc.array(
          fc.record({
            advance: fc.integer({ min: 0, max: 40_000 }),
            action: fc.constantFrom('approve', 'reject', 'evaluate', 'none'),
            model: fc.integer({ min: 0, max: 2 }),
          }),
          { minLength: 1, maxLength: 20 },
        ),
        async (late, steps) => {
          const clock = new ManualClock(Date.UTC(2026, 0, 1), { skew: (d) => (d > 5 ? late : 0) });
          const t = await startTestWarden(CONFIG, { clock });
          tw = t;
          t.registry.autoSettle = true;
          const models = ['a', 'b', 'c'];
          for (const model of models) await severeApproval(t, model);
          /** Approvals and rejections taken, per model. */
          const answers = new Map<string, number>();
          /** The deadline (ms) of the model's newest approval request, from what was published. */
          const deadlineOf = (model: string): number => {
            const requests = t.bus.log.filter((m) =>
              m.subject.endsWith(`.rollback_approval_requested.${model}`),
            );
            return (requests.at(-1)!.data as { deadline: number }).deadline * 1000;
          };
          for (const step of steps) {
            clock.advance(step.advance);
            const model = models[step.model]!;
            const now = clock.now();
            if (step.action === 'approve' || step.action === 'reject') {
              const answered = await t.warden[step.action](model, { by: 'oncall' }).then(
                () => true,
                () => false,
              );
              if (answered) {
                expect(now, `${step.action} of ${model} taken`).toBeLessThan(deadlineOf(model));
                answers.set(model, (answers.get(model) ?? 0) + 1);
              }
            } else if (step.action === 'evaluate') {
              await t.warden.evaluate({ model_id: model, current_elo: 1440, games_played: 100 });
            }
            await t.warden.idle();
          }
          for (let i = 0; i < 20; i++) {
            clock.advance(30_000);
            await t.warden.idle();
          }
          // Every request ended once: approved or rejected by the operator (a rejection publishes nothing),
          // or expired.
          for (const model of models) {
            const requested = t.bus.log.filter((m) =>
              m.subject.endsWith(`.rollback_approval_requested.${model}`),
            ).length;
            const expired = t.bus.log.filter(
              (m) =>
                m.subject.endsWith(`.alert.${model}`) &&
                (m.data as { kind?: string }).kind === 'approval_expired',
            ).length;
            expect((answers.get(model) ?? 0) + expired, model).toBe(requested);
            expect(t.warden.status(model).models[0]!.state).not.toBe('awaitingApproval');
          }
          await t.close();
          tw = null;
        },
      ),
      { numRuns: 25 },
    );
  }, 120_000);

  it('early, on time and late, across restarts: every approval expires, cooldown ends and auto-resume happens exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(
        // Early (as Node's timers often are), on time, or late.
        fc.array(
          fc.oneof(fc.integer({ min: -3, max: -1 }), fc.constant(0), fc.integer({ min: 1, max: 2_000 })),
          {
            minLength: 1,
            maxLength: 16,
          },
        ),
        fc.array(
          fc.record({
            advance: fc.integer({ min: 1, max: 90_000 }),
            restart: fc.integer({ min: 0, max: 5 }).map((x) => x === 0),
          }),
          {
            minLength: 5,
            maxLength: 25,
          },
        ),
        async (skews, steps) => {
          let n = 0;
          // Timers of more than a few ms fire early or late by the generated skews; a re-armed rest fires on time.
          const skew = (delay: number) => (delay > 5 ? skews[n++ % skews.length]! : 0);
          const clock = new ManualClock(Date.UTC(2026, 0, 1), { skew });
          const models = Array.from({ length: 12 }, (_, i) => `m${i}`);
          let t = await startTestWarden(CONFIG, { clock });
          tw = t;
          const log = collector();
          log.track(t);
          t.registry.autoSettle = true;
          for (const [i, model] of models.entries()) {
            await severeApproval(t, model);
            // Staggered deadlines, so that restarts and advances fall between them.
            clock.advance(1_000 + i * 7_001);
            await t.warden.idle();
          }
          for (const step of steps) {
            clock.advance(step.advance);
            await t.warden.idle();
            if (step.restart) {
              t = await t.restart();
              tw = t;
              t.registry.autoSettle = true;
              log.track(t);
            }
          }
          // Then long enough for everything still due.
          for (let i = 0; i < 40; i++) {
            clock.advance(30_000);
            await t.warden.idle();
          }
          const all = log.all();
          const expired = count(
            all.filter((m) => (m.data as { kind?: string }).kind === 'approval_expired'),
            'alert',
            modelOf,
          );
          const rolledBack = count(all, 'promotion_rolled_back', modelOf);
          const paused = count(all, 'training_paused', configOf);
          const resumed = count(all, 'training_resumed', configOf);
          for (const model of models) {
            expect(expired.get(model), `${model} approval expired`).toBe(1);
            expect(rolledBack.get(model), `${model} rolled back`).toBe(1);
            expect(paused.get(model), `${model} paused`).toBe(1);
            expect(resumed.get(model), `${model} auto-resumed`).toBe(1);
            expect(t.warden.status(model).models[0]!.state, `${model} cooldown ended`).toBe('healthy');
            expect(t.warden.trainingStatus(model).status).toBe('running');
          }
          await t.close();
          tw = null;
        },
      ),
      { numRuns: 8 },
    );
  }, 120_000);
});
