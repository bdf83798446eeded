import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kvm } from '@nats-io/kv';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { OUTPUT_EVENTS } from '../../src/domain/events.ts';
import { startNatsServer, type NatsServer } from '../harness/nats-server.ts';
import { connectClient, type StoredMessage, type TestClient } from '../harness/nats-client.ts';
import { startNatsWarden, type NatsWarden } from '../harness/nats-warden.ts';
import { eventually } from '../harness/eventually.ts';

let server: NatsServer;
let client: TestClient;
let w: NatsWarden;
let clock: ManualClock;

type Reply = { ok: boolean; error?: { code: string; message: string }; [key: string]: unknown };

beforeAll(async () => {
  server = await startNatsServer();
  client = await connectClient(server.url);
  clock = new ManualClock();
  w = await startNatsWarden(server.url, { clock, config: { approval: { requireForSevere: true } } });
});

afterAll(async () => {
  await w?.stop();
  await client?.close();
  await server?.[Symbol.asyncDispose]();
});

/** Publishes and waits until Warden has processed it and everything it caused. */
async function send(subject: string, payload: unknown): Promise<void> {
  await client.publish(subject, payload);
  await w.settled();
}

async function command(subject: string, body?: unknown): Promise<Reply> {
  const reply = await client.request<Reply>(subject, body);
  await w.settled();
  return reply;
}

const eventsOn = async (kind: string): Promise<StoredMessage[]> => client.stored(`warden.evt.${kind}.>`);

/** The payload of an output event must be what the core's schema for that event says. */
function schemaFor(kind: string) {
  const spec = Object.values(OUTPUT_EVENTS).find((e) => e.kind === kind);
  if (!spec) throw new Error(`no output event ${kind}`);
  return spec.schema;
}

describe('the NATS wire contract', () => {
  it('takes promotions and evaluations, and publishes detections, clearances and approval requests', async () => {
    await send('warden.in.promotion.hex8_2p', {
      event_id: 'p1',
      model_id: 'hex8_2p',
      version: 'v1',
      elo: 1500,
      config_key: 'hex8_2p',
    });
    await send('warden.in.promotion.hex8_2p', {
      event_id: 'p2',
      model_id: 'hex8_2p_v2',
      elo: 1520,
      timestamp: 1767225600,
    });
    await send('warden.in.evaluation.hex8_2p', {
      event_id: 'e1',
      model_id: 'hex8_2p_v2',
      current_elo: 1495,
      baseline_elo: 1520,
      games_played: 400,
    });
    await send('warden.in.evaluation.hex8_2p', {
      event_id: 'e2',
      model_id: 'hex8_2p',
      version: 'v2',
      current_elo: 1521,
      games_played: 400,
    });
    await send('warden.in.evaluation.hex8_2p', {
      event_id: 'e3',
      model_id: 'hex8_2p_v2',
      current_elo: 1460,
      baseline_elo: 1520,
      current_win_rate: 0.46,
      baseline_win_rate: 0.5,
      error_rate: 0.01,
      games_played: 400,
    });

    for (const kind of [
      'regression_detected',
      'regression_minor',
      'regression_cleared',
      'regression_severe',
      'rollback_approval_requested',
    ]) {
      const events = await eventsOn(kind);
      expect(events.length, kind).toBeGreaterThan(0);
      for (const e of events) {
        expect(e.subject).toBe(`warden.evt.${kind}.hex8_2p`);
        schemaFor(kind).parse(e.data);
      }
    }
    expect((await eventsOn('rollback_approval_requested'))[0]!.data).toMatchObject({
      severity: 'severe',
      held_because: 'approval_required',
      to_version: 'v1',
    });
  });

  it('answers reject and approve; an approved rollback publishes PROMOTION_ROLLED_BACK and pauses training', async () => {
    expect(await command('warden.cmd.reject.hex8_2p', { by: 'alice', note: 'noise' })).toEqual({
      ok: true,
      outcome: { kind: 'rejected' },
      state: 'healthy',
    });
    expect(await command('warden.cmd.reject.hex8_2p', { by: 'alice' })).toMatchObject({
      ok: false,
      error: { code: 'no_pending_approval' },
    });

    await send('warden.in.evaluation.hex8_2p', {
      event_id: 'e4',
      model_id: 'hex8_2p_v2',
      current_elo: 1465,
      baseline_elo: 1520,
      games_played: 400,
    });
    expect(w.warden.status('hex8_2p').models[0]!.state).toBe('awaitingApproval');
    expect(await command('warden.cmd.approve.hex8_2p', { by: 'alice', note: 'confirmed' })).toMatchObject({
      ok: true,
      outcome: { kind: 'rollback_started', toVersion: 'v1' },
    });

    const rolledBack = await eventsOn('promotion_rolled_back');
    expect(rolledBack.map((e) => schemaFor('promotion_rolled_back').parse(e.data))).toEqual([
      expect.objectContaining({
        model_id: 'hex8_2p',
        from_version: 'v2',
        to_version: 'v1',
        triggered_by: 'auto_regression_approved',
        by: 'alice',
      }),
    ]);
    const paused = await eventsOn('training_paused');
    expect(paused.map((e) => e.subject)).toEqual(['warden.evt.training_paused.hex8_2p']);
    schemaFor('training_paused').parse(paused[0]!.data);
    expect(await client.stored('warden.int.pause_acknowledged.>')).toHaveLength(1);
  });

  it('answers pause and resume for a training config, publishing TRAINING_PAUSED and TRAINING_RESUMED', async () => {
    expect(await command('warden.cmd.pause.sq19_4p', { by: 'bob', reason: 'cluster maintenance' })).toEqual({
      ok: true,
      outcome: { kind: 'paused' },
      state: 'paused',
    });
    await eventually(async () =>
      expect(await client.kv('warden_training', 'sq19_4p')).toMatchObject({ status: 'paused', by: 'bob' }),
    );
    clock.advance(90_000);
    expect(await command('warden.cmd.resume.sq19_4p', { by: 'bob', note: 'maintenance over' })).toMatchObject(
      { ok: true, state: 'running' },
    );
    expect(await command('warden.cmd.resume.sq19_4p', { by: 'bob' })).toMatchObject({
      ok: false,
      error: { code: 'conflict' },
    });
    const resumed = await eventsOn('training_resumed');
    expect(resumed.map((e) => schemaFor('training_resumed').parse(e.data))).toEqual([
      expect.objectContaining({ config_key: 'sq19_4p', by: 'bob', paused_seconds: 90 }),
    ]);
    await eventually(async () =>
      expect(await client.kv('warden_training', 'sq19_4p')).toMatchObject({ status: 'running', by: 'bob' }),
    );
  });

  it('answers a manual rollback, and publishes ROLLBACK_FAILED and an alert when the registry refuses it', async () => {
    await send('warden.in.promotion.sq19_4p', { model_id: 'sq19_4p_v1', elo: 1400 });
    await send('warden.in.promotion.sq19_4p', { model_id: 'sq19_4p_v2', elo: 1410 });
    expect(
      await command('warden.cmd.rollback.sq19_4p', {
        by: 'carol',
        reason: 'bad openings reported',
        to_version: 'v1',
      }),
    ).toMatchObject({
      ok: true,
      outcome: { kind: 'rollback_started' },
    });
    expect((await eventsOn('promotion_rolled_back')).map((e) => e.data)).toContainEqual(
      expect.objectContaining({ model_id: 'sq19_4p', triggered_by: 'manual', by: 'carol', to_version: 'v1' }),
    );
    expect(await client.kv('warden_registry', 'sq19_4p')).toMatchObject({
      version: 'v1',
      reason: 'bad openings reported',
    });

    // A serving system moved the pointer by itself: Warden's rollback from v2 no longer applies.
    await send('warden.in.promotion.hex6_2p', { model_id: 'hex6_2p_v1', elo: 1300 });
    await send('warden.in.promotion.hex6_2p', { model_id: 'hex6_2p_v2', elo: 1310 });
    const registry = await new Kvm(client.js).open('warden_registry');
    await registry.put(
      'hex6_2p',
      JSON.stringify({
        model_id: 'hex6_2p',
        version: 'v7',
        since: new Date().toISOString(),
        reason: 'serving system',
        rollback_id: null,
      }),
    );
    expect(await command('warden.cmd.rollback.hex6_2p', { by: 'carol', reason: 'suspicious' })).toMatchObject(
      { ok: true },
    );
    const failed = await eventsOn('rollback_failed');
    expect(failed.map((e) => schemaFor('rollback_failed').parse(e.data))).toEqual([
      expect.objectContaining({
        model_id: 'hex6_2p',
        from_version: 'v2',
        to_version: 'v1',
        error: expect.stringContaining('found v7'),
      }),
    ]);
    const alerts = await eventsOn('alert');
    expect(alerts.map((e) => schemaFor('alert').parse(e.data))).toContainEqual(
      expect.objectContaining({ model_id: 'hex6_2p', kind: 'rollback_failed' }),
    );
    expect(await client.stored('warden.evt.training_paused.hex6_2p')).toEqual([]);
  });

  it('answers status and history with the shapes of Warden.status() and Warden.history()', async () => {
    const status = await command('warden.cmd.status', { model_id: 'hex8_2p' });
    expect(status).toEqual({ ok: true, ...JSON.parse(JSON.stringify(w.warden.status('hex8_2p'))) });
    const all = await command('warden.cmd.status');
    expect((all.models as Array<{ model_id: string }>).map((m) => m.model_id)).toEqual([
      'hex6_2p',
      'hex8_2p',
      'sq19_4p',
    ]);
    expect((all.training as Array<{ config_key: string }>).map((t) => t.config_key)).toEqual([
      'hex8_2p',
      'sq19_4p',
    ]);

    const history = await command('warden.cmd.history', { limit: 10 });
    expect(history).toEqual({
      ok: true,
      ...JSON.parse(JSON.stringify(await w.warden.history({ limit: 10 }))),
    });
    expect(
      (history.rollbacks as Array<{ model_id: string; outcome: string }>).map((r) => [r.model_id, r.outcome]),
    ).toEqual([
      ['hex6_2p', 'rollback_failed'],
      ['sq19_4p', 'rolled_back'],
      ['hex8_2p', 'rolled_back'],
    ]);
    const one = await command('warden.cmd.history', { model_id: 'sq19_4p' });
    expect((one.rollbacks as unknown[]).length).toBe(1);
  });

  it('replies with an error for bad commands', async () => {
    expect(await command('warden.cmd.approve.nope', { by: 'x' })).toMatchObject({
      ok: false,
      error: { code: 'unknown_model' },
    });
    expect(await command('warden.cmd.approve.hex8_2p', 'not json')).toMatchObject({
      ok: false,
      error: { code: 'invalid_input' },
    });
    expect(await command('warden.cmd.approve.hex8_2p', {})).toMatchObject({
      ok: false,
      error: { code: 'invalid_input' },
    });
    expect(await command('warden.cmd.rollback.hex8_2p', { by: 'x', reason: 'r', extra: 1 })).toMatchObject({
      ok: false,
      error: { code: 'invalid_input' },
    });
    expect(await command('warden.cmd.launch.hex8_2p', { by: 'x' })).toMatchObject({
      ok: false,
      error: { code: 'invalid_input' },
    });
    expect(await command('warden.cmd.approve', { by: 'x' })).toMatchObject({
      ok: false,
      error: { code: 'invalid_input' },
    });
    expect(await command('warden.cmd.history', { limit: 0 })).toMatchObject({
      ok: false,
      error: { code: 'invalid_input' },
    });
    expect(await command('warden.cmd.status', { model_id: 'nope' })).toMatchObject({
      ok: false,
      error: { code: 'unknown_model' },
    });
  });
});
