import { describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import type { RuntimeObserver } from '../../src/actors/runtime.ts';
import type { CommitBatch } from '../../src/actors/ports.ts';
import { PromotionRolledBackSchema } from '../../src/domain/events.ts';
import { partitionOf } from '../../src/nats/partitions-map.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { publishRegression } from '../harness/regression.ts';

const nats = useSharedNats({ partitions: { ho3: 2 } });

/** The training configs' answers to PAUSE, in the order they came. */
function pauseAnswers(): { observer: RuntimeObserver; answers: string[] } {
  const answers: string[] = [];
  return {
    answers,
    observer: {
      outcome: (kind, _key, event, outcome) => {
        if (kind === 'training' && event === 'PAUSE') answers.push(outcome.kind);
      },
    },
  };
}

describe('NATS mode: the rollback event handed to the training config in process', () => {
  it('pauses the training config once: the durable delivery of the same event only acknowledges it', async () => {
    const prefix = 'ho1';
    const { observer, answers } = pauseAnswers();
    await using w = await startNatsWarden(nats.server.url, {
      clock: new ManualClock(),
      config: { nats: { prefix } },
      observer,
    });
    await publishRegression(nats.client, prefix, 'hm');
    await w.settled();
    await eventually(async () => {
      const info = await nats.client.jsm.consumers.info(
        `${prefix.toUpperCase()}_EVENTS`,
        `${prefix}_rolled_back`,
      );
      expect(info.num_pending + info.num_ack_pending).toBe(0);
      expect(info.delivered.stream_seq).toBeGreaterThan(0);
    });
    await w.settled();
    // Handed over in process, then delivered by the durable and acknowledged without a second PAUSE.
    expect(answers).toEqual(['paused']);
    const stream = `${prefix.toUpperCase()}_EVENTS`;
    expect((await nats.client.stored(`${prefix}.evt.promotion_rolled_back.>`, stream)).length).toBe(1);
    expect((await nats.client.stored(`${prefix}.evt.training_paused.>`, stream)).length).toBe(1);
    expect((await nats.client.stored(`${prefix}.int.pause_acknowledged.>`, stream)).length).toBe(1);
    expect(w.warden.status('hm').training[0]).toMatchObject({ status: 'paused' });
  });

  it('hands a rollback event over once: its republication under the same message id (an outbox retry, a stranded sweep) pauses nothing again', async () => {
    const prefix = 'ho4';
    const { observer, answers } = pauseAnswers();
    await using w = await startNatsWarden(nats.server.url, {
      clock: new ManualClock(),
      config: { nats: { prefix } },
      observer,
    });
    await publishRegression(nats.client, prefix, 'hm');
    await w.settled();
    const stream = `${prefix.toUpperCase()}_EVENTS`;
    // Handed over, then delivered by the durable and acknowledged.
    await eventually(async () => {
      const info = await nats.client.jsm.consumers.info(stream, `${prefix}_rolled_back`);
      expect(info.num_pending + info.num_ack_pending).toBe(0);
      expect(info.delivered.stream_seq).toBeGreaterThan(0);
    });
    const [rolledBack] = await nats.client.stored(`${prefix}.evt.promotion_rolled_back.>`, stream);
    // Published again as the outbox or the sweeper does it: JetStream drops it as a duplicate.
    await w.adapters.bus.publish(rolledBack!.subject, rolledBack!.data, { msgId: rolledBack!.msgId! });
    await w.settled();
    expect(answers).toEqual(['paused']);
    expect((await nats.client.stored(`${prefix}.int.pause_acknowledged.>`, stream)).length).toBe(1);
  });

  it('is idempotent by rollback id: the same rollback event delivered again pauses nothing twice', async () => {
    const prefix = 'ho2';
    const { observer, answers } = pauseAnswers();
    await using w = await startNatsWarden(nats.server.url, {
      clock: new ManualClock(),
      config: { nats: { prefix } },
      observer,
    });
    await publishRegression(nats.client, prefix, 'hm');
    await w.settled();
    const stream = `${prefix.toUpperCase()}_EVENTS`;
    const [rolledBack] = await nats.client.stored(`${prefix}.evt.promotion_rolled_back.>`, stream);
    const event = PromotionRolledBackSchema.parse(rolledBack!.data);
    // What a crash after the hand-over leaves: the durable delivers the event again and nobody remembers
    // it was handled (here: the same event under another message id, so that the stream keeps it).
    await jetstream(nats.client.nc).publish(rolledBack!.subject, JSON.stringify(rolledBack!.data), {
      msgID: `${event.event_id}-again`,
    });
    // Delivered at least once again (a machine busy past the tests' 2 s ack wait delivers it once more).
    await eventually(() => expect(answers.slice(0, 2)).toEqual(['paused', 'duplicate']));
    await w.settled();
    expect(answers.slice(1).every((answer) => answer === 'duplicate')).toBe(true);
    expect((await nats.client.stored(`${prefix}.evt.training_paused.>`, stream)).length).toBe(1);
    expect(w.warden.status('hm').training[0]).toMatchObject({ status: 'paused' });
    expect(w.warden.status('hm').models[0]).toMatchObject({ state: 'cooldown', production_version: 'v1' });
  });

  it('leaves a rollback committed where the training configs are not written to the instance that writes them', async () => {
    // Two partitions on two instances: the models of one are written by the instance that does not hold
    // the control lease (training configs, rollback events). That one must not pause anything itself.
    const prefix = 'ho3';
    const first = pauseAnswers();
    const second = pauseAnswers();
    const config = { nats: { prefix, partitions: 2 } };
    await using a = await startNatsWarden(nats.server.url, {
      clock: new ManualClock(),
      config,
      observer: first.observer,
    });
    await using b = await startNatsWarden(nats.server.url, {
      clock: new ManualClock(),
      config,
      observer: second.observer,
    });
    await eventually(
      () => {
        expect(a.adapters.partitions()).toHaveLength(1);
        expect(b.adapters.partitions()).toHaveLength(1);
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    // One model in each partition.
    const models = ['hm0', 'hm1', 'hm2', 'hm3', 'hm4', 'hm5', 'hm6', 'hm7'];
    const picked = [0, 1].map((k) => models.find((m) => partitionOf(m, 2) === k)!);
    for (const model of picked) await publishRegression(nats.client, prefix, model);
    await eventually(() => expect([...first.answers, ...second.answers]).toHaveLength(2), {
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    await a.settled();
    await b.settled();
    // Each training config paused once, by the one instance that writes training configs.
    expect([...first.answers, ...second.answers]).toEqual(['paused', 'paused']);
    expect(first.answers.length === 0 || second.answers.length === 0).toBe(true);
    const stream = `${prefix.toUpperCase()}_EVENTS`;
    expect((await nats.client.stored(`${prefix}.evt.training_paused.>`, stream)).length).toBe(2);
  });

  it('keeps the rollback in the history when the model commits again before its published events are cleared', async () => {
    const prefix = 'ho4';
    await using w = await startNatsWarden(nats.server.url, {
      clock: new ManualClock(),
      config: { nats: { prefix } },
    });
    await publishRegression(nats.client, prefix, 'hm');
    await w.settled();
    // The pause acknowledgement was committed to the model after its rollback event was published: the
    // history record stays in the model's value until it is moved to history.<model> (timeline bucket), and
    // is moved once.
    await eventually(async () => {
      const model = await nats.client.kv<{ history: unknown[]; outbox: unknown[] }>(
        `${prefix}_actors`,
        'model.hm',
      );
      expect(model).toMatchObject({ history: [], outbox: [] });
      const history = await nats.client.kv<{ records: Array<{ kind: string }> }>(
        `${prefix}_timeline`,
        'history.hm',
      );
      expect(history?.records.map((r) => r.kind)).toEqual(['rolled_back']);
    });
    const history = await w.warden.history({ model_id: 'hm', limit: 10 });
    expect(history.rollbacks.map((r) => r.outcome)).toEqual(['rolled_back']);
  });

  it('never overtakes an earlier rollback event of the same model still on the stream', async () => {
    // Real rollback events, made under another prefix: one of model ka, one of model kb.
    const source = 'ho6src';
    await using w0 = await startNatsWarden(nats.server.url, {
      clock: new ManualClock(),
      config: { nats: { prefix: source } },
    });
    await publishRegression(nats.client, source, 'ka');
    await publishRegression(nats.client, source, 'kb');
    await w0.settled();
    const rolledBack = async (model: string) =>
      (await nats.client.stored(`${source}.evt.promotion_rolled_back.${model}`, 'HO6SRC_EVENTS'))[0]!
        .data as Record<string, unknown>;
    const [ka, kb] = [await rolledBack('ka'), await rolledBack('kb')];
    await w0.stop();

    // On the stream before Warden starts: ka's event, then kb's first rollback.
    const prefix = 'ho6';
    const made = await startNatsWarden(nats.server.url, { config: { nats: { prefix } } });
    await made.stop();
    const js = jetstream(nats.client.nc);
    const put = (model: string, payload: Record<string, unknown>) =>
      js.publish(`${prefix}.evt.promotion_rolled_back.${model}`, JSON.stringify(payload), {
        msgID: String(payload.event_id),
      });
    await put('ka', ka);
    await put('kb', { ...kb, rollback_id: 'kb.first', reason: 'the first rollback of kb' });

    // One delivery at a time, and ka's pause held in its commit: kb's first event stays on the server.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let holding = false;
    const { observer, answers } = pauseAnswers();
    await using w = await startNatsWarden(nats.server.url, {
      clock: new ManualClock(),
      config: { nats: { prefix } },
      hooks: { jetstream: { maxAckPending: 1 } },
      observer,
      wrapStore: (store) =>
        new Proxy(store, {
          get(target, property) {
            const value = Reflect.get(target, property, target) as unknown;
            if (property !== 'commitEach') return typeof value === 'function' ? value.bind(target) : value;
            return async (parts: readonly CommitBatch[]) => {
              if (parts.some((part) => part.actors[0]?.kind === 'training' && part.actors[0].key === 'ka')) {
                holding = true;
                await released;
              }
              return target.commitEach!(parts);
            };
          },
        }),
    });
    try {
      await eventually(() => expect(holding).toBe(true));
      // A later rollback of kb committed here now: handed over in process, it would pause kb first.
      await w.adapters.bus.publish(
        `${prefix}.evt.promotion_rolled_back.kb`,
        { ...kb, event_id: 'kb.second-event', rollback_id: 'kb.second', reason: 'the second rollback of kb' },
        { msgId: 'kb.second-event' },
      );
    } finally {
      release();
    }
    await w.settled();
    await eventually(() => expect(answers).toHaveLength(3));
    expect(w.warden.trainingStatus('kb')).toMatchObject({
      status: 'paused',
      reason: expect.stringContaining('rollback kb.first of kb'),
    });
    expect(answers).toEqual(['paused', 'paused', 'already_paused']);
  });
});
