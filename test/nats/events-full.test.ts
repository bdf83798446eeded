import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { DiscardPolicy } from '@nats-io/jetstream';
import { spawnTs } from '../harness/child-process.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { expectLikeClean, publishInputs, runOutcome, type Input, type RunOutcome } from './chaos-stream.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/warden-process.ts', import.meta.url));
const nats = useSharedNats();

const streamOf = (prefix: string) => `${prefix.toUpperCase()}_EVENTS`;

/** The events stream takes no more messages (its limit at what it holds, discard new), or again any. */
async function limitEvents(prefix: string, full: boolean): Promise<void> {
  const info = await nats.client.jsm.streams.info(streamOf(prefix));
  await nats.client.jsm.streams.update(streamOf(prefix), {
    max_msgs: full ? Math.max(info.state.messages, 1) : -1,
    discard: DiscardPolicy.New,
  });
}

/** Inputs acknowledged by nobody yet on the inputs durable (delivered and held, or not yet delivered). */
async function unacknowledged(prefix: string): Promise<number> {
  const info = await nats.client.jsm.consumers.info(`${prefix.toUpperCase()}_IN`, `${prefix}_inputs`);
  return info.num_ack_pending + info.num_pending;
}

const promotion = (prefix: string, model: string, n: number, elo: number): Input => ({
  subject: `${prefix}.in.promotion.${model}`,
  payload: { event_id: `${model}-p${n}`, model_id: `${model}_v${n}`, elo },
});
const evaluation = (prefix: string, model: string, n: number, version: string, elo: number): Input => ({
  subject: `${prefix}.in.evaluation.${model}`,
  payload: {
    event_id: `${model}-e${n}`,
    model_id: `${model}_${version}`,
    current_elo: elo,
    games_played: 200,
  },
});

/** The inputs of the test, in three steps: before the stream is full, the one that rolls back, then more. */
function inputs(prefix: string): { before: Input[]; rollback: Input[]; meanwhile: Input[] } {
  return {
    before: [
      promotion(prefix, 'stuck', 1, 1500),
      promotion(prefix, 'stuck', 2, 1520),
      promotion(prefix, 'free', 1, 1500),
      promotion(prefix, 'free', 2, 1520),
      // A minor regression: announced (an event), watched.
      evaluation(prefix, 'free', 1, 'v2', 1495),
    ],
    rollback: [evaluation(prefix, 'stuck', 1, 'v2', 1400)],
    meanwhile: [
      promotion(prefix, 'free', 3, 1530),
      evaluation(prefix, 'free', 2, 'v3', 1529),
      promotion(prefix, 'stuck', 3, 1530),
      evaluation(prefix, 'stuck', 2, 'v3', 1531),
    ],
  };
}

describe('the events stream refuses publications (full, discard new)', () => {
  it("a model taken over with events it cannot publish goes on (its rollback finishes, its inputs and other models' are applied), and once the stream takes messages again every event is there once, in commit order, as in a clean run", async () => {
    const config = { cooldownSeconds: 3600 };

    // The clean run: one instance, the same inputs, no fault.
    const cleanPrefix = 'fullclean';
    const cleanInputs = inputs(cleanPrefix);
    let clean: RunOutcome;
    {
      await using cleanRun = await startNatsWarden(nats.server.url, {
        config: { ...config, nats: { prefix: cleanPrefix } },
      });
      await publishInputs(nats.client, [
        ...cleanInputs.before,
        ...cleanInputs.rollback,
        ...cleanInputs.meanwhile,
      ]);
      await eventually(async () => expect(await unacknowledged(cleanPrefix)).toBe(0));
      await cleanRun.settled();
      clean = await runOutcome(nats.client, cleanPrefix);
    }
    expect(clean.models).toMatchObject({
      stuck: { production_version: 'v3' },
      free: { production_version: 'v3' },
    });

    const prefix = 'full';
    const steps = inputs(prefix);
    // The first instance takes the inputs; every rollback it starts stays in flight until it dies.
    await using first = spawnTs(FIXTURE, {
      WARDEN_NATS_URL: nats.server.url,
      WARDEN_NATS_PREFIX: prefix,
      WARDEN_COOLDOWN_SECONDS: '3600',
      WARDEN_LOG_LEVEL: 'warn',
      WARDEN_TEST_HOLD: 'before-registry',
    });
    await first.line('READY');
    // The second stands by; every commit that fails there is noted with its time.
    const commitFailures: number[] = [];
    const publishFailures: string[] = [];
    await using second = await startNatsWarden(nats.server.url, {
      config: { ...config, nats: { prefix } },
      observer: {
        effectFailed: (what, error) => {
          if (what === 'commit') commitFailures.push(performance.now());
          if (what === 'publish')
            publishFailures.push(error instanceof Error ? error.message : String(error));
        },
      },
    });
    expect(second.adapters.role()).toBe('standby');

    await publishInputs(nats.client, steps.before);
    await eventually(async () => expect(await unacknowledged(prefix)).toBe(0));
    await eventually(async () =>
      expect((await nats.client.stored(`${prefix}.evt.>`, streamOf(prefix))).length).toBeGreaterThan(0),
    );
    // The stream is full from here on; the rollback of `stuck` is committed with its events, which stay there.
    await limitEvents(prefix, true);
    const storedWhenFull = (await nats.client.stored(`${prefix}.evt.>`, streamOf(prefix))).length;
    await publishInputs(nats.client, steps.rollback);
    await first.line('HOLDING');
    expect(await first.kill('SIGKILL')).toBe('SIGKILL');

    // The second takes over, and with it the rollback of `stuck`: it finishes, although the events the first
    // instance committed before it cannot be published yet; they wait, in order, with the events that follow.
    await eventually(() => expect(second.adapters.role()).toBe('active'), { timeoutMs: 10_000 });
    await eventually(() =>
      expect(second.warden.status('stuck').models[0]).toMatchObject({ production_version: 'v1' }),
    );

    // More inputs, of both models: applied and acknowledged, their events waiting with the others.
    await publishInputs(nats.client, steps.meanwhile);
    await eventually(async () => expect(await unacknowledged(prefix)).toBe(0));
    await eventually(() => {
      expect(second.warden.status('free').models[0]?.production_version).toBe('v3');
      expect(second.warden.status('stuck').models[0]?.production_version).toBe('v3');
    });
    expect((await nats.client.stored(`${prefix}.evt.>`, streamOf(prefix))).length).toBe(storedWhenFull);
    // No commit failed for it: the stream holds up the events only, not the actors.
    expect(commitFailures).toEqual([]);
    // The operator is told: each failed attempt is counted, naming the stream and its reason, and the
    // events waiting are counted (the metrics warden_effect_failures_total{what="publish"} and
    // warden_events_unpublished).
    expect(publishFailures.at(-1)).toMatch(
      /^stream FULL_EVENTS refused a publication on full\.evt\.\S+: maximum messages exceeded \(JetStream error 10077\)$/,
    );
    expect(second.warden.stateCounts().unpublishedEvents).toBeGreaterThan(0);

    // The stream takes messages again: everything flows, each event once, each model's in commit order.
    await limitEvents(prefix, false);
    await eventually(async () => expect(await unacknowledged(prefix)).toBe(0), { timeoutMs: 20_000 });
    await second.settled();
    expect(second.warden.stateCounts().unpublishedEvents).toBe(0);
    await expectLikeClean(nats.client, prefix, clean, 'after the stream took messages again', 20_000);
    const events = await nats.client.stored(`${prefix}.evt.*.stuck`, streamOf(prefix));
    const numbers = events.map((e) => Number((e.data as { event_id: string }).event_id.split('.e')[1]));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(new Set(numbers).size).toBe(numbers.length);
  }, 120_000);
});
