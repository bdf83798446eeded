import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { startNatsServer, type NatsServer } from '../harness/nats-server.ts';
import { connectClient, type TestClient } from '../harness/nats-client.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { eventually } from '../harness/eventually.ts';
import { registryWith } from '../support/registry-with.ts';

const cleanup: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of cleanup.reverse()) await close();
  cleanup.length = 0;
});

async function setUp(): Promise<{ server: NatsServer; client: TestClient }> {
  const server = await startNatsServer();
  const client = await connectClient(server.url);
  cleanup.push(
    async () => await server[Symbol.asyncDispose](),
    () => client.close(),
  );
  return { server, client };
}

const MODELS = ['hex8_2p', 'hex8_4p', 'sq19_2p', 'sq8_2p', 'hexbig_3p'];

describe('NATS mode durability', () => {
  it('processes every input published while Warden was stopped, in order, once it starts again', async () => {
    const { client } = await setUp();
    const clock = new ManualClock();
    const url = client.nc.getServer();
    const first = await startNatsWarden(`nats://${url}`, { clock });
    for (const model of MODELS)
      await client.publish(`warden.in.promotion.${model}`, { model_id: `${model}_v1`, elo: 1500 });
    await first.settled();
    await first.stop();

    // Half with an event_id, half without: both kinds must arrive, once each.
    for (let v = 2; v <= 30; v++) {
      for (const model of MODELS) {
        const body = { model_id: `${model}_v${v}`, elo: 1500 + v };
        await client.publish(
          `warden.in.promotion.${model}`,
          v % 2 === 0 ? { ...body, event_id: `${model}-${v}` } : body,
        );
      }
    }
    await client.publish('warden.in.evaluation.hex8_2p', {
      event_id: 'eval-1',
      model_id: 'hex8_2p_v30',
      current_elo: 1500,
      games_played: 100,
    });

    await using second = await startNatsWarden(`nats://${url}`, { clock });
    await second.settled();
    for (const model of second.warden.status().models) {
      expect(model.versions.map((v) => v.version)).toEqual(Array.from({ length: 30 }, (_, i) => `v${i + 1}`));
      expect(model.production_version).toBe('v30');
    }
    expect(
      second.warden
        .status()
        .models.map((m) => m.model_id)
        .sort(),
    ).toEqual([...MODELS].sort());
    // 1500 against v30's 1530: the last input, an evaluation, arrived too.
    expect(second.warden.status('hex8_2p').models[0]!.last_detection).toMatchObject({ severity: 'minor' });
  });

  it('brings the registry in line when it starts on a promotion whose registry write was lost (a crash between the commit and the write)', async () => {
    const { server, client } = await setUp();
    const clock = new ManualClock();
    // Two models' v2 writes never reach the registry (the process dies before them); the stop that follows
    // writes nothing more, so the start after it finds what a crash would leave.
    const lost = new Set(['hex8_4p', 'sq8_2p']);
    const first = await startNatsWarden(server.url, {
      clock,
      wrapRegistry: (registry) =>
        registryWith(registry, {
          recordPromotion: async (modelId, version, at, reason) => {
            if (version === 'v2' && lost.has(modelId)) throw new Error('the process died before this write');
            return registry.recordPromotion(modelId, version, at, reason);
          },
        }),
    });
    for (const model of MODELS) {
      await client.publish(`warden.in.promotion.${model}`, { model_id: `${model}_v1`, elo: 1500 });
      await client.publish(`warden.in.promotion.${model}`, { model_id: `${model}_v2`, elo: 1520 });
    }
    await first.settled();
    await first.stop();
    for (const model of lost)
      expect(await client.kv<{ version: string }>('warden_registry', model)).toMatchObject({ version: 'v1' });
    await using second = await startNatsWarden(server.url, { clock });
    await second.settled();
    await eventually(async () => {
      for (const model of MODELS) {
        expect(await client.kv<{ version: string }>('warden_registry', model)).toMatchObject({
          version: 'v2',
        });
      }
    });
  });

  it('processes one event_id once, even when it is published twice', async () => {
    const { server, client } = await setUp();
    await using w = await startNatsWarden(server.url, { clock: new ManualClock() });
    await client.publish('warden.in.promotion.hex8_2p', {
      event_id: 'p1',
      model_id: 'hex8_2p_v1',
      elo: 1500,
    });
    const minor = { event_id: 'run-42', model_id: 'hex8_2p_v1', current_elo: 1475, games_played: 100 };
    await client.publish('warden.in.evaluation.hex8_2p', minor);
    await client.publish('warden.in.evaluation.hex8_2p', minor);
    await w.settled();
    await client.publish('warden.in.evaluation.hex8_2p', minor);
    await w.settled();
    expect(w.warden.status('hex8_2p').models[0]!.consecutive_regressions).toBe(1);
    expect(await client.stored('warden.evt.regression_detected.>')).toHaveLength(1);
    // A promotion seen again (same event_id) does not start the version over: the streak stays.
    await client.publish('warden.in.promotion.hex8_2p', {
      event_id: 'p1',
      model_id: 'hex8_2p_v1',
      elo: 1500,
    });
    await w.settled();
    expect(w.warden.status('hex8_2p').models[0]!.consecutive_regressions).toBe(1);
    // A different event_id with the same content is another evaluation.
    await client.publish('warden.in.evaluation.hex8_2p', { ...minor, event_id: 'run-43' });
    await w.settled();
    expect(w.warden.status('hex8_2p').models[0]!.consecutive_regressions).toBe(2);
  });

  it('changes nothing when every input is delivered again (the durable consumer was deleted and replays the stream)', async () => {
    const { server, client } = await setUp();
    await using w = await startNatsWarden(server.url, { clock: new ManualClock() });
    await client.publish('warden.in.promotion.hex8_2p', { model_id: 'hex8_2p_v1', elo: 1500 });
    for (let i = 0; i < 3; i++)
      await client.publish('warden.in.evaluation.hex8_2p', {
        model_id: 'hex8_2p_v1',
        current_elo: 1478,
        games_played: 100,
      });
    await w.settled();
    const before = w.warden.status('hex8_2p');
    expect(before.models[0]!.consecutive_regressions).toBe(3);
    const eventsBefore = await client.stored();

    // nats-server 2.9 may refuse the first attempt while a pull is pending on the consumer.
    await eventually(() => client.jsm.consumers.delete('WARDEN_IN', 'warden_inputs'));
    await eventually(
      async () =>
        expect((await client.jsm.consumers.info('WARDEN_IN', 'warden_inputs')).delivered.stream_seq).toBe(4),
      {
        timeoutMs: 15_000,
      },
    );
    await w.settled();
    expect(w.warden.status('hex8_2p')).toEqual(before);
    expect(await client.stored()).toEqual(eventsBefore);
  });

  it('reconnects after a nats-server restart, reports it in readiness, and carries on without losing anything', async () => {
    const { server, client } = await setUp();
    await using w = await startNatsWarden(server.url, { clock: new ManualClock() });
    for (const model of MODELS)
      await client.publish(`warden.in.promotion.${model}`, { model_id: `${model}_v1`, elo: 1500 });
    for (const model of MODELS)
      await client.publish(`warden.in.promotion.${model}`, { model_id: `${model}_v2`, elo: 1520 });
    await w.settled();
    expect(w.adapters.ready()).toBe(true);

    await server.stop();
    await eventually(() => expect(w.adapters.ready()).toBe(false));
    await server.start();
    await eventually(() => expect(w.adapters.ready()).toBe(true), { timeoutMs: 15_000 });

    // After the restart: more inputs, a regression on each model, and the rollbacks they cause.
    await eventually(
      () => client.publish('warden.in.promotion.hex8_2p', { model_id: 'hex8_2p_v3', elo: 1530 }),
      { timeoutMs: 15_000 },
    );
    for (const model of MODELS.slice(1)) {
      await client.publish(`warden.in.evaluation.${model}`, {
        model_id: `${model}_v2`,
        current_elo: 1430,
        games_played: 100,
      });
    }
    await eventually(
      async () => {
        const rolledBack = await client.stored('warden.evt.promotion_rolled_back.>');
        expect(rolledBack.map((e) => e.subject).sort()).toEqual(
          MODELS.slice(1)
            .map((m) => `warden.evt.promotion_rolled_back.${m}`)
            .sort(),
        );
      },
      { timeoutMs: 20_000 },
    );
    await w.settled();
    expect(w.warden.status('hex8_2p').models[0]!.production_version).toBe('v3');
    for (const model of MODELS.slice(1)) {
      expect(w.warden.status(model).models[0]!.production_version).toBe('v1');
      expect(await client.kv('warden_registry', model)).toMatchObject({ version: 'v1' });
      await eventually(async () =>
        expect(await client.kv('warden_training', model)).toMatchObject({ status: 'paused' }),
      );
    }
    expect(await client.request('warden.cmd.resume.sq19_2p', { by: 'ops' })).toMatchObject({
      ok: true,
      state: 'running',
    });
  });
});
