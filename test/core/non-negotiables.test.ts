/**
 * PRODUCT.md's non-negotiables 1 to 6 and 8, each against the real embedded runtime (SQLite, manual clock,
 * a registry the test settles). Each names the seed defect it guards against (seed-behaviour.md §6.1).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestWarden, type TestWarden } from '../support/test-warden.ts';

const MODEL = 'hex8_2p';
let tw: TestWarden;

afterEach(async () => {
  await tw?.close();
});

const kinds = (t: TestWarden, kind: string) => t.bus.log.filter((m) => m.subject.split('.')[2] === kind);

async function promoteVersions(t: TestWarden, ...versions: string[]): Promise<void> {
  for (const version of versions) await t.warden.promote({ model_id: MODEL, version, elo: 1500 });
}

async function evaluate(t: TestWarden, drop: number, extra: Record<string, unknown> = {}) {
  const result = await t.warden.evaluate({
    model_id: MODEL,
    current_elo: 1500 - drop,
    games_played: 100,
    ...extra,
  });
  await t.warden.idle();
  return result;
}

describe('1. one detection causes at most one rollback, also under redelivery and restarts (seed #7)', () => {
  it('a CRITICAL evaluation rolls back once, emits one PROMOTION_ROLLED_BACK and pauses once', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' } });
    tw.registry.autoSettle = true;
    await promoteVersions(tw, 'v1', 'v2');
    await evaluate(tw, 80);
    expect(tw.registry.applied).toHaveLength(1);
    expect(kinds(tw, 'promotion_rolled_back')).toHaveLength(1);
    expect(kinds(tw, 'training_paused')).toHaveLength(1);
  });

  it('a CRITICAL while awaiting approval rolls back once', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' }, approval: { requireForSevere: true } });
    tw.registry.autoSettle = true;
    await promoteVersions(tw, 'v1', 'v2');
    expect((await evaluate(tw, 60)).state).toBe('awaitingApproval');
    expect((await evaluate(tw, 80)).state).toBe('rollingBack');
    await tw.warden.idle();
    expect(tw.warden.status(MODEL).models[0]!.state).toBe('cooldown');
    expect(tw.registry.applied.map((r) => [r.fromVersion, r.toVersion])).toEqual([['v2', 'v1']]);
    expect(kinds(tw, 'promotion_rolled_back')).toHaveLength(1);
    // The approval is gone with the rollback: approving now is refused, not a second rollback.
    await expect(tw.warden.approve(MODEL, { by: 'alice' })).rejects.toMatchObject({
      code: 'no_pending_approval',
    });
  });

  it('the same evaluation delivered twice (one event_id) is processed once', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' } });
    tw.registry.autoSettle = true;
    await promoteVersions(tw, 'v1', 'v2');
    const first = await evaluate(tw, 80, { event_id: 'eval-42' });
    const again = await evaluate(tw, 80, { event_id: 'eval-42' });
    expect(first.outcome.kind).toBe('regression');
    expect(again.outcome).toEqual({ kind: 'duplicate', inputId: 'eval-42' });
    expect(tw.registry.applied).toHaveLength(1);
    expect(kinds(tw, 'regression_detected')).toHaveLength(1);
  });

  it('a PROMOTION_ROLLED_BACK redelivered to the training config pauses nothing twice, even after a resume', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' } });
    tw.registry.autoSettle = true;
    await promoteVersions(tw, 'v1', 'v2');
    await evaluate(tw, 80);
    const rolledBack = kinds(tw, 'promotion_rolled_back')[0]!;
    await tw.warden.resume(MODEL, { by: 'alice' });
    await tw.bus.publish(rolledBack.subject, rolledBack.data);
    await tw.warden.idle();
    expect(tw.warden.trainingStatus(MODEL).status).toBe('running');
    expect(kinds(tw, 'training_paused')).toHaveLength(1);
  });

  it('killed in rollingBack and restarted: the rollback completes once, with the same rollback id', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' } });
    await promoteVersions(tw, 'v1', 'v2');
    await evaluate(tw, 80);
    expect(tw.warden.status(MODEL).models[0]!.state).toBe('rollingBack');
    const firstCall = tw.registry.calls[0]!;
    tw = await tw.crash();
    await tw.warden.idle();
    // The restarted runtime resumes the same rollback (same id); the registry applies it once.
    expect(tw.registry.calls.map((c) => c.rollbackId)).toEqual([firstCall.rollbackId, firstCall.rollbackId]);
    tw.registry.settle('succeed');
    await tw.warden.idle();
    expect(tw.registry.applied).toHaveLength(1);
    expect(tw.warden.status(MODEL).models[0]).toMatchObject({ state: 'cooldown', production_version: 'v1' });
    expect(kinds(tw, 'promotion_rolled_back')).toHaveLength(1);
    expect(tw.warden.trainingStatus(MODEL).status).toBe('paused');
  });

  it('killed after the commit but before publishing: the outbox publishes once on restart, same event ids', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' } });
    await promoteVersions(tw, 'v1', 'v2');
    tw.bus.block('warden.evt.>');
    await tw.warden.evaluate({ model_id: MODEL, current_elo: 1440, games_played: 100 });
    const attempted = tw.bus.log.map((m) => (m.data as { event_id: string }).event_id);
    expect(attempted).toHaveLength(1); // the first publication hangs; the rest wait behind it, in order
    tw = await tw.crash();
    await tw.warden.idle();
    const republished = tw.bus.log
      .filter((m) => m.subject.includes('.evt.regression_'))
      .map((m) => [m.subject.split('.')[2], (m.data as { event_id: string }).event_id]);
    expect(republished).toEqual([
      ['regression_detected', attempted[0]],
      ['regression_severe', expect.any(String)],
    ]);
  });
});

describe('2. the rollback target is the last known-good version, never the one just rolled back from (seed #8)', () => {
  it('two rollbacks in a row: v3 -> v2, then v2 -> v1, never back to v3', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' }, cooldownSeconds: 60 });
    tw.registry.autoSettle = true;
    await promoteVersions(tw, 'v1', 'v2', 'v3');
    await evaluate(tw, 80);
    expect(tw.warden.status(MODEL).models[0]!.production_version).toBe('v2');
    tw.clock.advance(60_000);
    await tw.warden.idle();
    await evaluate(tw, 80);
    expect(tw.registry.applied.map((r) => `${r.fromVersion}->${r.toVersion}`)).toEqual(['v3->v2', 'v2->v1']);
    const versions = tw.warden.status(MODEL).models[0]!.versions;
    expect(versions.filter((v) => v.rolled_back_from).map((v) => v.version)).toEqual(['v2', 'v3']);
  });

  it('with no known-good version left, the rollback fails with an alert and nothing changes', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' } });
    await promoteVersions(tw, 'v1');
    await evaluate(tw, 80);
    expect(tw.registry.calls).toHaveLength(0);
    expect(tw.warden.status(MODEL).models[0]!.production_version).toBe('v1');
    expect(kinds(tw, 'rollback_failed')[0]!.data).toMatchObject({
      error: 'no earlier known-good version to roll back to',
    });
    expect(kinds(tw, 'alert').map((m) => (m.data as { kind: string }).kind)).toContain('rollback_failed');
    await expect(tw.warden.rollback(MODEL, { by: 'alice', reason: 'try' })).rejects.toMatchObject({
      code: 'conflict',
    });
  });

  it('a manual rollback may name any earlier version; an unknown one is refused with the known ones listed', async () => {
    tw = await startTestWarden();
    tw.registry.autoSettle = true;
    await promoteVersions(tw, 'v1', 'v2', 'v3');
    await expect(tw.warden.rollback(MODEL, { by: 'alice', reason: 'x', to_version: 'v9' })).rejects.toThrow(
      /expected one of the promoted versions \(v1, v2, v3\), received "v9"/,
    );
    await tw.warden.rollback(MODEL, { by: 'alice', reason: 'bad batch', to_version: 'v1' });
    await tw.warden.idle();
    expect(tw.registry.applied.map((r) => `${r.fromVersion}->${r.toVersion}`)).toEqual(['v3->v1']);
  });
});

describe('3. every rollback emits exactly one PROMOTION_ROLLED_BACK and pauses training (seeds #10, #11, #12, #18)', () => {
  it('an approved rollback pauses training, and the trainer is told no until an operator resumes', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' }, approval: { requireForSevere: true } });
    tw.registry.autoSettle = true;
    await promoteVersions(tw, 'v1', 'v2');
    await evaluate(tw, 60);
    expect(tw.warden.trainingStatus(MODEL).may_train).toBe(true);
    await tw.warden.approve(MODEL, { by: 'alice', note: 'confirmed on dashboard' });
    await tw.warden.idle();
    const [event] = kinds(tw, 'promotion_rolled_back');
    expect(event!.data).toMatchObject({
      triggered_by: 'auto_regression_approved',
      by: 'alice',
      action_required: 'pause_training',
    });
    expect(tw.warden.trainingStatus(MODEL)).toMatchObject({ status: 'paused', may_train: false });
    await tw.warden.resume(MODEL, { by: 'bob', note: 'fixed the data' });
    await tw.warden.idle();
    expect(tw.warden.trainingStatus(MODEL)).toMatchObject({ status: 'running', may_train: true, by: 'bob' });
    expect(kinds(tw, 'training_resumed')).toHaveLength(1);
  });

  it('manual and expired-approval rollbacks pause training too, one PROMOTION_ROLLED_BACK each', async () => {
    tw = await startTestWarden({
      detection: { mode: 'threshold' },
      approval: { requireForSevere: true, timeoutSeconds: 600 },
      cooldownSeconds: 10,
    });
    tw.registry.autoSettle = true;
    await promoteVersions(tw, 'v1', 'v2', 'v3');
    await tw.warden.rollback(MODEL, { by: 'alice', reason: 'bad data' });
    await tw.warden.idle();
    await tw.warden.resume(MODEL, { by: 'alice' });
    tw.clock.advance(30_000);
    await tw.warden.idle();
    await evaluate(tw, 60);
    tw.clock.advance(600_000);
    await tw.warden.idle();
    const triggers = kinds(tw, 'promotion_rolled_back').map(
      (m) => (m.data as { triggered_by: string }).triggered_by,
    );
    expect(triggers).toEqual(['manual', 'approval_expired']);
    expect(kinds(tw, 'training_paused')).toHaveLength(2);
    expect(kinds(tw, 'alert').map((m) => (m.data as { kind: string }).kind)).toContain('approval_expired');
  });
});

describe('4. severity is monotone (seed #1)', () => {
  it('with approval required a MODERATE > 30 waits like a SEVERE; a CRITICAL never waits', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' }, approval: { requireForSevere: true } });
    await promoteVersions(tw, 'v1', 'v2');
    const moderate = await evaluate(tw, 40);
    expect(moderate.outcome).toMatchObject({ severity: 'moderate', decision: 'await_approval' });
    await tw.warden.reject(MODEL, { by: 'alice' });
    const critical = await evaluate(tw, 80);
    expect(critical.outcome).toMatchObject({ severity: 'critical', decision: 'rollback' });
  });
});

describe('5. the cooldown never hides a recovery or a worse regression (seed #5)', () => {
  async function inCooldown(): Promise<TestWarden> {
    const t = await startTestWarden({ detection: { mode: 'threshold' } });
    t.registry.autoSettle = true;
    await promoteVersions(t, 'v1', 'v2', 'v3');
    await evaluate(t, 60); // SEVERE: rollback v3 -> v2
    expect(t.warden.status(MODEL).models[0]!.state).toBe('cooldown');
    return t;
  }

  it('a recovery inside the cooldown clears', async () => {
    tw = await inCooldown();
    await evaluate(tw, 25);
    await evaluate(tw, 0);
    expect(kinds(tw, 'regression_cleared')).toHaveLength(1);
    expect(tw.warden.status(MODEL).models[0]!.consecutive_regressions).toBe(0);
  });

  it('a milder repeat stays quiet, a worse regression is announced and held for a human', async () => {
    tw = await inCooldown();
    const announcedBefore = kinds(tw, 'regression_detected').length;
    const milder = await evaluate(tw, 25);
    expect(milder.outcome).toMatchObject({ severity: 'minor', announced: false });
    expect(kinds(tw, 'regression_detected')).toHaveLength(announcedBefore);
    const worse = await evaluate(tw, 80);
    expect(worse.outcome).toMatchObject({
      severity: 'critical',
      decision: 'await_approval',
      announced: true,
    });
    expect(kinds(tw, 'regression_critical')).toHaveLength(1);
    expect(kinds(tw, 'rollback_approval_requested')[0]!.data).toMatchObject({ held_because: 'cooldown' });
    expect(tw.registry.applied).toHaveLength(1);
  });
});

describe('6. one canonical config key (seed #20)', () => {
  it('"canonical_hex8_2p_v7" pauses config "canonical_hex8_2p"; a configured key wins', async () => {
    tw = await startTestWarden({
      detection: { mode: 'threshold' },
      models: { square8_2p: { configKey: 'sq8' } },
    });
    tw.registry.autoSettle = true;
    for (const ref of ['canonical_hex8_2p_v6', 'canonical_hex8_2p_v7', 'square8_2p_v1', 'square8_2p_v2']) {
      await tw.warden.promote({ model_id: ref, elo: 1500 });
    }
    await tw.warden.evaluate({ model_id: 'canonical_hex8_2p_v7', current_elo: 1400, games_played: 100 });
    await tw.warden.evaluate({ model_id: 'square8_2p', current_elo: 1400, games_played: 100 });
    await tw.warden.idle();
    const paused = kinds(tw, 'training_paused').map((m) => m.subject.split('.')[3]);
    expect(paused.sort()).toEqual(['canonical_hex8_2p', 'sq8']);
    expect(tw.warden.trainingStatus('canonical_hex8_2p').may_train).toBe(false);
  });
});

describe('8. state survives restarts', () => {
  it('a restart in awaitingApproval keeps the pending approval and its deadline, which still expires', async () => {
    tw = await startTestWarden({
      detection: { mode: 'threshold' },
      approval: { requireForSevere: true, timeoutSeconds: 3600 },
    });
    tw.registry.autoSettle = true;
    await promoteVersions(tw, 'v1', 'v2');
    await evaluate(tw, 60);
    const pending = tw.warden.status(MODEL).models[0]!.pending_approval;
    tw.clock.advance(1_800_000);
    tw = await tw.crash();
    tw.registry.autoSettle = true;
    const model = tw.warden.status(MODEL).models[0]!;
    expect(model.state).toBe('awaitingApproval');
    expect(model.pending_approval).toEqual(pending);
    tw.clock.advance(1_799_999);
    await tw.warden.idle();
    expect(tw.warden.status(MODEL).models[0]!.state).toBe('awaitingApproval');
    tw.clock.advance(1);
    await tw.warden.idle();
    expect(tw.warden.status(MODEL).models[0]!.state).toBe('cooldown');
    expect(kinds(tw, 'promotion_rolled_back')[0]!.data).toMatchObject({ triggered_by: 'approval_expired' });
  });

  it('a restart in cooldown keeps the cooldown and its end', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' }, cooldownSeconds: 300 });
    tw.registry.autoSettle = true;
    await promoteVersions(tw, 'v1', 'v2');
    await evaluate(tw, 80);
    const until = tw.warden.status(MODEL).models[0]!.cooldown_until;
    tw = await tw.restart();
    expect(tw.warden.status(MODEL).models[0]).toMatchObject({ state: 'cooldown', cooldown_until: until });
    tw.clock.advance(Date.parse(until!) - tw.clock.now() - 1);
    await tw.warden.idle();
    expect(tw.warden.status(MODEL).models[0]!.state).toBe('cooldown');
    tw.clock.advance(1);
    await tw.warden.idle();
    expect(tw.warden.status(MODEL).models[0]!.state).toBe('healthy');
  });

  it('paused configs, history and the SPRT in progress survive a restart', async () => {
    tw = await startTestWarden();
    tw.registry.autoSettle = true;
    await promoteVersions(tw, 'v1', 'v2');
    await tw.warden.pause('other_cfg', { by: 'alice', reason: 'disk full' });
    await tw.warden.evaluate({ model_id: MODEL, games_played: 100, wins: 45, draws: 10, losses: 45 });
    await tw.warden.rollback(MODEL, { by: 'alice', reason: 'manual test' });
    await tw.warden.idle();
    const history = await tw.warden.history();
    tw = await tw.restart();
    expect(tw.warden.trainingStatus('other_cfg')).toMatchObject({
      status: 'paused',
      reason: 'disk full',
      by: 'alice',
    });
    expect(await tw.warden.history()).toEqual(history);
    expect(history.rollbacks).toHaveLength(1);
  });
});

describe('1. redelivered promotions', () => {
  it('a promotion delivered again after a rollback does not undo the rollback', async () => {
    tw = await startTestWarden({ detection: { mode: 'threshold' } });
    tw.registry.autoSettle = true;
    await tw.warden.promote({ event_id: 'promo-1', model_id: MODEL, version: 'v1', elo: 1500 });
    await tw.warden.promote({ event_id: 'promo-2', model_id: MODEL, version: 'v2', elo: 1500 });
    await evaluate(tw, 80);
    expect(tw.warden.status(MODEL).models[0]!.production_version).toBe('v1');
    const again = await tw.warden.promote({ event_id: 'promo-2', model_id: MODEL, version: 'v2', elo: 1500 });
    expect(again.outcome).toEqual({ kind: 'duplicate', inputId: 'promo-2' });
    expect(tw.warden.status(MODEL).models[0]!.production_version).toBe('v1');
  });
});
