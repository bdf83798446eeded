import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { PromotionRolledBackSchema, TrainingPausedSchema } from '../../src/domain/events.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const nats = useSharedNats();

describe('NATS mode, end to end', () => {
  it('detects a regression, rolls back, pauses training, keeps KV up to date, and resumes on an operator command', async () => {
    const clock = new ManualClock();
    await using w = await startNatsWarden(nats.server.url, { clock });

    await nats.client.publish('warden.in.promotion.hex8_2p', {
      event_id: 'p1',
      model_id: 'hex8_2p',
      version: 'v1',
      elo: 1500,
    });
    await nats.client.publish('warden.in.promotion.hex8_2p', {
      event_id: 'p2',
      model_id: 'hex8_2p_v2',
      elo: 1520,
    });
    await nats.client.publish('warden.in.evaluation.hex8_2p', {
      event_id: 'e1',
      model_id: 'hex8_2p_v2',
      current_elo: 1515,
      games_played: 200,
    });
    await w.settled();
    expect(await nats.client.kv('warden_registry', 'hex8_2p')).toMatchObject({
      model_id: 'hex8_2p',
      version: 'v2',
      reason: 'promoted',
    });
    expect(await nats.client.stored('warden.evt.>')).toEqual([]);

    await nats.client.publish('warden.in.evaluation.hex8_2p', {
      event_id: 'e2',
      model_id: 'hex8_2p_v2',
      current_elo: 1440,
      games_played: 200,
    });
    await w.settled();

    const events = await nats.client.stored('warden.evt.>');
    expect(events.map((e) => e.subject)).toEqual([
      'warden.evt.regression_detected.hex8_2p',
      'warden.evt.regression_critical.hex8_2p',
      'warden.evt.alert.hex8_2p',
      'warden.evt.promotion_rolled_back.hex8_2p',
      // The "rolled back" alert, published with the rollback.
      'warden.evt.alert.hex8_2p',
      'warden.evt.training_paused.hex8_2p',
    ]);
    const rolledBack = PromotionRolledBackSchema.parse(events[3]!.data);
    expect(rolledBack).toMatchObject({
      model_id: 'hex8_2p',
      from_version: 'v2',
      to_version: 'v1',
      triggered_by: 'auto_regression_critical',
    });
    const paused = TrainingPausedSchema.parse(events[5]!.data);
    expect(paused).toMatchObject({
      config_key: 'hex8_2p',
      by: 'warden',
      rollback_id: rolledBack.rollback_id,
    });

    // What serving systems and trainers read without asking Warden.
    expect(await nats.client.kv('warden_registry', 'hex8_2p')).toEqual({
      model_id: 'hex8_2p',
      version: 'v1',
      since: new Date(clock.now()).toISOString(),
      reason: rolledBack.reason,
      rollback_id: rolledBack.rollback_id,
    });
    await eventually(async () =>
      expect(await nats.client.kv('warden_training', 'hex8_2p')).toEqual({
        config_key: 'hex8_2p',
        status: 'paused',
        reason: paused.reason,
        since: new Date(clock.now()).toISOString(),
        by: 'warden',
      }),
    );

    const status = await nats.client.request<{
      ok: boolean;
      models: Array<Record<string, unknown>>;
      training: Array<Record<string, unknown>>;
    }>('warden.cmd.status');
    expect(status.ok).toBe(true);
    expect(status.models[0]).toMatchObject({
      model_id: 'hex8_2p',
      state: 'cooldown',
      production_version: 'v1',
    });
    expect(status.training[0]).toMatchObject({ config_key: 'hex8_2p', status: 'paused', may_train: false });

    clock.advance(60_000);
    const resumed = await nats.client.request('warden.cmd.resume.hex8_2p', {
      by: 'alice',
      note: 'v1 is serving again',
    });
    expect(resumed).toEqual({ ok: true, outcome: { kind: 'resumed' }, state: 'running' });
    await w.settled();
    const resumedEvents = await nats.client.stored('warden.evt.training_resumed.>');
    expect(resumedEvents.map((e) => e.data)).toEqual([
      expect.objectContaining({ config_key: 'hex8_2p', by: 'alice', paused_seconds: 60 }),
    ]);
    await eventually(async () =>
      expect(await nats.client.kv('warden_training', 'hex8_2p')).toMatchObject({
        status: 'running',
        by: 'alice',
        reason: 'v1 is serving again',
      }),
    );
    expect(w.rejected.size).toBe(0);
  });
});
