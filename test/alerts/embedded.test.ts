import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { startAlerts } from '../../src/alerts/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ALERT_KINDS } from '../../src/domain/events.ts';
import { silentLogger } from '../../src/logger.ts';
import { buildService, type Service } from '../../src/service.ts';
import { createWarden, type Warden } from '../../src/warden.ts';
import { FakeRegistry } from '../support/fake-registry.ts';
import { alertOf, countsByEvent, startReceiver, type Receiver } from './receiver.ts';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-alerts-'));
  closers.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  closers.push(r.close);
  return r;
}

/** Two routes by severity: Slack gets the critical alerts, the JSON hook every alert. */
const routes = (r: Receiver): ConfigInput['alerts'] => ({
  routes: [
    { url: `${r.url}/slack`, format: 'slack', levels: ['critical'] },
    { url: `${r.url}/json`, format: 'json' },
  ],
  initialBackoffMs: 1000,
  maxAttempts: 5,
});

async function promote(w: Warden, model: string, version: string, elo: number): Promise<void> {
  await w.promote({ model_id: model, version, elo });
}

describe('alerts: every kind, routed by level, exactly once (embedded)', () => {
  it('reaches the JSON hook once per alert, and Slack once per critical alert', async () => {
    const r = await receiver();
    const clock = new ManualClock();
    const registry = new FakeRegistry(true);
    const config = parseConfig({
      dataDir: tempDir(),
      detection: { mode: 'threshold' },
      approval: { requireForSevere: true, timeoutSeconds: 60 },
      autoRollbackLimit: { max: 1, windowSeconds: 86_400 },
      cooldownSeconds: 0,
      alerts: routes(r),
    });
    const warden = await createWarden(config, { clock, registry });
    closers.push(() => warden.stop());
    const alerts = (await startAlerts(warden, config, { logger: silentLogger, clock }))!;
    closers.push(() => alerts.close());

    // SEVERE with requireForSevere: an approval is requested; nobody answers, it expires into a rollback,
    // whose pause is acknowledged: rolled back and training paused.
    await promote(warden, 'hex8_2p', 'v1', 1500);
    await promote(warden, 'hex8_2p', 'v2', 1520);
    await warden.evaluate({ model_id: 'hex8_2p', current_elo: 1460, games_played: 200 });
    await warden.idle();
    clock.advance(61_000);
    await warden.idle();
    // CRITICAL: an automatic rollback (and its "rolled back" notice); a second one within the day is over
    // the limit of 1: held for approval, rate limited.
    await promote(warden, 'sq9_4p', 'v1', 1500);
    await promote(warden, 'sq9_4p', 'v2', 1520);
    await warden.evaluate({ model_id: 'sq9_4p', current_elo: 1400, games_played: 200 });
    await warden.idle();
    clock.advance(1000);
    await warden.idle();
    await promote(warden, 'sq9_4p', 'v3', 1530);
    await warden.evaluate({ model_id: 'sq9_4p', current_elo: 1400, games_played: 200 });
    await warden.idle();
    // A rollback the registry refuses.
    registry.autoSettle = false;
    await promote(warden, 'go9', 'v1', 1500);
    await promote(warden, 'go9', 'v2', 1520);
    await warden.evaluate({ model_id: 'go9', current_elo: 1400, games_played: 200 });
    await vi.waitFor(() => expect(registry.pendingCount()).toBe(1));
    registry.settle('fail', 'registry unavailable');
    await warden.idle();
    // The last kind needs a training config that never answers: published as the model actor would.
    await warden.bus.publish('warden.evt.alert.go9', {
      event_id: 'go9.e99',
      timestamp: clock.now() / 1000,
      model_id: 'go9',
      config_key: 'go9',
      level: 'critical',
      kind: 'pause_unacknowledged',
      message: 'Training config go9 did not confirm the pause for rollback go9.r1',
    });
    // And the NATS intake's own (a dead-lettered input), which the delivery treats like any other.
    await warden.bus.publish('warden.evt.alert.go9', {
      event_id: 'go9.dead.1',
      timestamp: clock.now() / 1000,
      model_id: 'go9',
      config_key: 'go9',
      level: 'critical',
      kind: 'input_dead_lettered',
      message: 'evaluation of go9 moved to the dead letter after 10 deliveries',
    });
    await warden.idle();
    await alerts.idle();

    const json = r.accepted('/json');
    const kinds = json.map((x) => `${alertOf(x).model_id}:${alertOf(x).kind}`);
    expect(kinds.sort()).toEqual(
      [
        'hex8_2p:approval_requested',
        'hex8_2p:approval_expired',
        'hex8_2p:rolled_back',
        'sq9_4p:critical_regression',
        'sq9_4p:rolled_back',
        'sq9_4p:critical_regression',
        'sq9_4p:approval_requested',
        'sq9_4p:rate_limited',
        'go9:critical_regression',
        'go9:rollback_failed',
        'go9:pause_unacknowledged',
        'go9:input_dead_lettered',
      ].sort(),
    );
    expect(new Set(json.map((x) => alertOf(x).kind))).toEqual(new Set(ALERT_KINDS));
    expect([...countsByEvent(json).values()].every((n) => n === 1)).toBe(true);
    const slack = r.accepted('/slack');
    expect(slack.map((x) => alertOf(x).level)).toEqual(slack.map(() => 'critical'));
    expect(slack.length).toBe(json.filter((x) => alertOf(x).level === 'critical').length);
    expect([...countsByEvent(slack).values()].every((n) => n === 1)).toBe(true);
    expect(r.received.every((x) => x.headers['idempotency-key'] === alertOf(x).event_id)).toBe(true);

    // The approval request carries the evidence and the deadline.
    const requested = json
      .map(alertOf)
      .find((a) => a.kind === 'approval_requested' && a.model_id === 'hex8_2p')!;
    expect(requested).toMatchObject({
      level: 'critical',
      details: {
        severity: 'severe',
        version: 'v2',
        current_elo: 1460,
        held_because: 'approval_required',
        deadline: Date.UTC(2026, 0, 1, 0, 1) / 1000,
        on_timeout: 'rollback',
        to_version: 'v1',
      },
    });
    expect(requested.message).toContain('Approve or reject within 60 s; then: rollback to v1');
    const slackRequest = slack.find((x) => alertOf(x).kind === 'approval_requested')!.body;
    expect(slackRequest.text).toMatch(/^\[CRITICAL\] Approval requested: hex8_2p: /);
    expect(JSON.stringify(slackRequest.blocks)).toContain('*deadline*\\n2026-01-01T00:01:00.000Z');
    const rolledBack = json.map(alertOf).find((a) => a.kind === 'rolled_back' && a.model_id === 'sq9_4p')!;
    expect(rolledBack.message).toMatch(
      /^sq9_4p rolled back v2 -> v1 .*training config sq9_4p pauses with it/,
    );
  });
});

describe('alerts: pending deliveries survive a restart (embedded)', () => {
  async function start(dataDir: string, r: Receiver, clock: ManualClock): Promise<Service> {
    const config = parseConfig({
      dataDir,
      http: { port: 0 },
      detection: { mode: 'threshold' },
      alerts: { routes: [{ url: `${r.url}/json` }], initialBackoffMs: 5000 },
    });
    return buildService(config, { logger: silentLogger, clock });
  }

  it('a delivery that failed before the restart is made once after it', async () => {
    const r = await receiver();
    const dataDir = tempDir();
    r.statuses.push(500);
    const first = await start(dataDir, r, new ManualClock());
    await first.warden.promote({ model_id: 'hex8_2p', version: 'v1', elo: 1500 });
    await first.warden.promote({ model_id: 'hex8_2p', version: 'v2', elo: 1520 });
    await first.warden.evaluate({ model_id: 'hex8_2p', current_elo: 1400, games_played: 200 });
    await first.warden.idle();
    await vi.waitFor(() => expect(r.received.length).toBeGreaterThanOrEqual(2));
    // The critical regression was answered 500; the "rolled back" notice went through.
    expect(r.received.map((x) => [alertOf(x).kind, x.status])).toEqual([
      ['critical_regression', 500],
      ['rolled_back', 200],
    ]);
    await first.stop();

    const clock = new ManualClock();
    const second = await start(dataDir, r, clock);
    closers.push(() => second.stop());
    // Due 5 s after the failed attempt, on the new process's clock.
    await vi.waitFor(() => {
      clock.advance(1000);
      expect(r.received).toHaveLength(3);
    });
    expect(r.received.map((x) => [alertOf(x).kind, x.status])).toEqual([
      ['critical_regression', 500],
      ['rolled_back', 200],
      ['critical_regression', 200],
    ]);
    expect([...countsByEvent(r.accepted('/json')).values()]).toEqual([1, 1]);
    // Nothing more is pending: time passing sends nothing again.
    clock.advance(3_600_000);
    await second.warden.idle();
    expect(r.received).toHaveLength(3);
  });
});
