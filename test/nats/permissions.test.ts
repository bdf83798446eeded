import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { startNatsServer, type NatsServer } from '../harness/nats-server.ts';
import { connectClient, type TestClient } from '../harness/nats-client.ts';
import { startNatsWarden, type NatsWarden } from '../harness/nats-warden.ts';
import { eventually } from '../harness/eventually.ts';

const NATS_CONF = fileURLToPath(new URL('../../nats.conf', import.meta.url));
const PASSWORDS = {
  WARDEN_NATS_PASSWORD: 'warden-secret',
  PRODUCER_NATS_PASSWORD: 'producer-secret',
  OPERATOR_NATS_PASSWORD: 'operator-secret',
  TRAINER_NATS_PASSWORD: 'trainer-secret',
};

let server: NatsServer;
let warden: NatsWarden;
let producer: TestClient;
let operator: TestClient;
let trainer: TestClient;

/** A request the user may not make: refused by the server (a permission error, or no answer at all). */
async function refused(client: TestClient, subject: string, body: unknown): Promise<string> {
  try {
    const reply = await client.request(subject, body, 1_000);
    return `answered: ${JSON.stringify(reply)}`;
  } catch (error) {
    return (error as Error).message;
  }
}

beforeAll(async () => {
  server = await startNatsServer({ configFile: NATS_CONF, env: PASSWORDS });
  const url = `nats://127.0.0.1:${server.port}`;
  // Warden itself connects as the warden user, with the credentials in the URL, as in docker-compose.yml.
  warden = await startNatsWarden(`nats://warden:${PASSWORDS.WARDEN_NATS_PASSWORD}@127.0.0.1:${server.port}`, {
    config: { approval: { requireForSevere: true } },
  });
  producer = await connectClient(url, { user: 'producer', pass: PASSWORDS.PRODUCER_NATS_PASSWORD });
  operator = await connectClient(url, { user: 'operator', pass: PASSWORDS.OPERATOR_NATS_PASSWORD });
  trainer = await connectClient(url, { user: 'trainer', pass: PASSWORDS.TRAINER_NATS_PASSWORD });
});

afterAll(async () => {
  await warden?.stop();
  for (const client of [producer, operator, trainer]) await client?.close();
  await server?.[Symbol.asyncDispose]();
});

describe("nats.conf's users", () => {
  it('let a producer publish inputs, but not approve or roll back; an operator can', async () => {
    await producer.publish('warden.in.promotion.hex8_2p', { model_id: 'hex8_2p_v1', elo: 1500 });
    await producer.publish('warden.in.promotion.hex8_2p', { model_id: 'hex8_2p_v2', elo: 1520 });
    await producer.publish('warden.in.evaluation.hex8_2p', {
      model_id: 'hex8_2p_v2',
      current_elo: 1460,
      games_played: 200,
    });
    await warden.settled();
    expect(warden.warden.status('hex8_2p').models[0]!.state).toBe('awaitingApproval');

    expect(await refused(producer, 'warden.cmd.approve.hex8_2p', { by: 'mallory' })).toMatch(/permission/i);
    expect(
      await refused(producer, 'warden.cmd.rollback.hex8_2p', { by: 'mallory', reason: 'because' }),
    ).toMatch(/permission/i);
    expect(await refused(trainer, 'warden.cmd.resume.hex8_2p', { by: 'mallory' })).toMatch(/permission/i);
    await expect(
      trainer.publish('warden.in.promotion.hex8_2p', { model_id: 'hex8_2p_v9' }),
    ).rejects.toThrow();
    await warden.settled();
    expect(warden.warden.status('hex8_2p').models[0]).toMatchObject({
      state: 'awaitingApproval',
      production_version: 'v2',
    });

    expect(await operator.request('warden.cmd.approve.hex8_2p', { by: 'alice' })).toMatchObject({
      ok: true,
      state: 'rollingBack',
    });
    await warden.settled();
    await producer.publish('warden.in.promotion.hex8_2p', { model_id: 'hex8_2p_v3', elo: 1530 });
    await warden.settled();
    expect(
      await operator.request('warden.cmd.rollback.hex8_2p', {
        by: 'alice',
        reason: 'v3 misbehaves',
        to_version: 'v1',
      }),
    ).toMatchObject({
      ok: true,
      outcome: { kind: 'rollback_started' },
    });
    await warden.settled();
    expect(await operator.request('warden.cmd.status', { model_id: 'hex8_2p' })).toMatchObject({
      ok: true,
      models: [{ production_version: 'v1' }],
    });
    // The model's timeline lines move to its key in the timeline bucket, which the warden user writes.
    // (Read as the warden user, with its default reply inboxes.)
    const asWarden = await connect({
      servers: `nats://127.0.0.1:${server.port}`,
      user: 'warden',
      pass: PASSWORDS.WARDEN_NATS_PASSWORD,
    });
    try {
      const timelines = await new Kvm(asWarden).open('warden_timeline');
      await eventually(async () => {
        const moved = (await timelines.get('model.hex8_2p'))?.json<{ lines: Array<{ event: string }> }>();
        expect(moved?.lines.map((l) => l.event)).toContain('ROLLBACK_REQUESTED');
      });
    } finally {
      await asWarden.close();
    }
    const shown = await warden.warden.store.timeline!('model', 'hex8_2p', 100);
    expect(shown.map((l) => l.event)).toContain('ROLLBACK_REQUESTED');
  });

  it('let an operator read the events, the registry and the training state', async () => {
    const events = await operator.stored('warden.evt.>');
    expect(events.map((e) => e.subject)).toContain('warden.evt.promotion_rolled_back.hex8_2p');
    expect(await operator.kv('warden_registry', 'hex8_2p')).toMatchObject({ version: 'v1' });
    await eventually(async () =>
      expect(await operator.kv('warden_training', 'hex8_2p')).toMatchObject({ status: 'paused' }),
    );
  });

  it('let a trainer read and watch its training state, and follow the events', async () => {
    expect(await trainer.kv('warden_training', 'hex8_2p')).toMatchObject({
      config_key: 'hex8_2p',
      status: 'paused',
    });
    const training = await new Kvm(trainer.js).open('warden_training');
    const watch = await training.watch({ key: 'hex8_2p' });
    const seen: string[] = [];
    const watching = (async () => {
      for await (const entry of watch) {
        seen.push((entry.json() as { status: string }).status);
        if (seen.includes('running')) break;
      }
    })();
    const live: string[] = [];
    trainer.nc.subscribe('warden.evt.>', {
      callback: (_error, m) => {
        live.push(m.subject);
      },
    });
    await trainer.nc.flush();

    expect(await operator.request('warden.cmd.resume.hex8_2p', { by: 'alice' })).toMatchObject({ ok: true });
    await watching;
    expect(seen).toEqual(['paused', 'running']);
    await eventually(() => expect(live).toContain('warden.evt.training_resumed.hex8_2p'));
    expect((await trainer.stored('warden.evt.training_resumed.>')).length).toBe(1);
  });

  it('keep the actor state away from producers and trainers', async () => {
    await expect(
      new Kvm(producer.js).open('warden_actors').then((kv) => kv.get('model.hex8_2p')),
    ).rejects.toThrow();
    await expect(
      new Kvm(trainer.js).open('warden_actors').then((kv) => kv.get('model.hex8_2p')),
    ).rejects.toThrow();
  });

  it('let a restarted Warden take inputs again (its consumers are recreated from their acknowledgement floor)', async () => {
    // Every start recreates the ordered input consumer (and the pause acknowledgements'), which deletes the
    // old one: the warden user must be allowed to, or a restarted Warden never takes another input.
    await warden.stop();
    warden = await startNatsWarden(
      `nats://warden:${PASSWORDS.WARDEN_NATS_PASSWORD}@127.0.0.1:${server.port}`,
      {
        config: { approval: { requireForSevere: true } },
      },
    );
    await producer.publish('warden.in.promotion.after_restart', { model_id: 'after_restart_v1', elo: 1500 });
    await eventually(
      () => expect(warden.warden.status().models.map((m) => m.model_id)).toContain('after_restart'),
      {
        timeoutMs: 15_000,
      },
    );
  });
});
