/**
 * Inputs that wait in their model's lane behind a rollback in flight. They are told to the server to be in
 * hand, so it never delivers them again however long they wait (the server's own clock is the reference: a
 * consumer of the test's own, never acknowledging, is redelivered after each ack wait). And a Warden that
 * stops meanwhile does not wait for that rollback: the inputs go back, and the next start applies them.
 */
import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import type { ModelRegistry } from '../../src/actors/ports.ts';
import { startNatsWarden, type NatsWarden } from '../harness/nats-warden.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { registryWith } from '../support/registry-with.ts';

const nats = useSharedNats();
/** Two seconds: told every 667 ms, a message is redelivered only if the event loop stalls for 1.3 s. */
const ACK_WAIT_MS = 2_000;

/** The model registry, its rollbacks held until `release()`. */
function holdingRollbacks(registry: ModelRegistry) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const state = { holding: 0 };
  const wrapped = registryWith(registry, {
    rollback: async (request) => {
      state.holding++;
      await released;
      return registry.rollback(request);
    },
  });
  return { wrapped, state, release };
}

/** Resolves once the server has delivered one message of `subject` `times` times to a consumer that never acks. */
async function serverAckWaitsElapsed(stream: string, subject: string, times: number) {
  const durable = `reference_${subject.replaceAll('.', '_')}`;
  await nats.client.jsm.consumers.add(stream, {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    ack_wait: ACK_WAIT_MS * 1_000_000,
    filter_subject: subject,
    deliver_policy: DeliverPolicy.Last,
  });
  const consumer = await nats.client.js.consumers.get(stream, durable);
  let deliveries = 0;
  await eventually(
    async () => {
      for await (const m of await consumer.fetch({ max_messages: 1, expires: ACK_WAIT_MS })) {
        deliveries = m.info.deliveryCount;
      }
      expect(deliveries).toBeGreaterThanOrEqual(times);
    },
    { timeoutMs: 30_000 },
  );
}

/**
 * A Warden whose registry holds rollbacks; model `model` promoted twice, then a critical regression (its
 * rollback held), then three inputs that wait for it in their lane.
 */
async function rollbackHeldWithInputsWaiting(prefix: string, model: string) {
  let holding: ReturnType<typeof holdingRollbacks> | undefined;
  const w = await startNatsWarden(nats.server.url, {
    config: { nats: { prefix } },
    hooks: { jetstream: { ackWaitMs: ACK_WAIT_MS } },
    wrapRegistry: (inner) => {
      holding = holdingRollbacks(inner);
      return holding.wrapped;
    },
  });
  const hold = holding!;
  const input = (kind: string, payload: object) =>
    nats.client.publish(`${prefix}.in.${kind}.${model}`, payload);
  await input('promotion', { event_id: `${model}-p1`, model_id: `${model}_v1`, elo: 1500 });
  await input('promotion', { event_id: `${model}-p2`, model_id: `${model}_v2`, elo: 1500 });
  await eventually(() => expect(w.warden.status(model).models[0]?.versions).toHaveLength(2));
  await input('evaluation', {
    event_id: `${model}-e1`,
    model_id: `${model}_v2`,
    current_elo: 1420,
    games_played: 200,
  });
  await eventually(() => expect(hold.state.holding).toBe(1));
  for (let i = 2; i <= 4; i++) {
    await input('evaluation', {
      event_id: `${model}-e${i}`,
      model_id: `${model}_v1`,
      current_elo: 1500,
      games_played: 200,
    });
  }
  const stream = `${prefix.toUpperCase()}_IN`;
  const durable = `${prefix}_inputs`;
  await eventually(async () =>
    expect((await nats.client.jsm.consumers.info(stream, durable)).num_ack_pending).toBe(3),
  );
  return { w, hold, stream, durable };
}

/** Every input acknowledged, the rollback made once, and the model back on v1 with every input applied. */
async function appliedOnce(w: NatsWarden, prefix: string, model: string, stream: string, durable: string) {
  await w.settled();
  const last = (await nats.client.jsm.streams.info(stream)).state.last_seq;
  await eventually(async () => {
    const done = await nats.client.jsm.consumers.info(stream, durable);
    expect(done.ack_floor.stream_seq).toBe(last);
    expect(done.num_ack_pending).toBe(0);
  });
  const events = `${prefix.toUpperCase()}_EVENTS`;
  expect(await nats.client.stored(`${prefix}.evt.promotion_rolled_back.${model}`, events)).toHaveLength(1);
  expect(w.warden.status(model).models[0]?.production_version).toBe('v1');
}

describe('NATS mode: inputs waiting behind a rollback', () => {
  it(
    'are not delivered again however long the rollback takes, and are applied once it ends',
    { timeout: 40_000 },
    async () => {
      const [prefix, model] = ['ka', 'km'];
      const { w, hold, stream, durable } = await rollbackHeldWithInputsWaiting(prefix, model);
      await using _ = w;
      // Released on a failure too: a rollback held for ever would hold the shutdown after it.
      try {
        // Three ack waits by the server's clock, with the inputs held all along.
        await serverAckWaitsElapsed(stream, `${prefix}.in.evaluation.${model}`, 4);
        const waiting = await nats.client.jsm.consumers.info(stream, durable);
        expect(waiting.num_redelivered).toBe(0);
        expect(waiting.num_ack_pending).toBe(3);
        expect(w.warden.status(model).models[0]?.state).toBe('rollingBack');
        hold.release();
        await appliedOnce(w, prefix, model, stream, durable);
        expect((await nats.client.jsm.consumers.info(stream, durable)).num_redelivered).toBe(0);
      } finally {
        hold.release();
      }
    },
  );

  it('a Warden stopped meanwhile stops without waiting for the rollback; the next one applies it and them', async () => {
    const [prefix, model] = ['kb', 'kn'];
    const first = await rollbackHeldWithInputsWaiting(prefix, model);
    try {
      // The rollback cannot end here any more: its inputs go back instead of waiting for it (a minute).
      await first.w.stop();
    } finally {
      first.hold.release();
    }
    await using second = await startNatsWarden(nats.server.url, {
      config: { nats: { prefix } },
      hooks: { jetstream: { ackWaitMs: ACK_WAIT_MS } },
    });
    await appliedOnce(second, prefix, model, first.stream, first.durable);
  });
});
