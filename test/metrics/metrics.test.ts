import { afterEach, describe, expect, it } from 'vitest';
import { WardenError } from '../../src/domain/errors.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import {
  OPERATOR_TOKEN,
  PRODUCER_TOKEN,
  parseMetrics,
  promoteTwo,
  startTestService,
  type TestService,
} from '../http/support.ts';

let running: TestService[] = [];
afterEach(async () => {
  await Promise.all(running.map((t) => t.close()));
  running = [];
});

async function scrape(t: TestService): Promise<Map<string, number>> {
  await t.service.warden.idle();
  const reply = await t.api('GET', '/metrics');
  expect(reply.status).toBe(200);
  return parseMetrics(reply.text);
}

/** The change of every sample between two scrapes (absent before counts as 0). */
function moved(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [name, value] of after) {
    const change = value - (before.get(name) ?? 0);
    if (change !== 0) delta[name] = change;
  }
  return delta;
}

describe('metrics: /metrics moves with a scenario', () => {
  it('times inputs that arrive on the bus (as NATS inputs do), not only HTTP requests', async () => {
    const t = await startTestService();
    running.push(t);
    await promoteTwo(t);
    const before = await scrape(t);
    await t.service.warden.bus.publish('warden.in.evaluation.hex8_2p', {
      model_id: 'hex8_2p',
      current_elo: 1533,
      games_played: 100,
    });
    const after = await scrape(t);
    expect(moved(before, after)).toMatchObject({ 'warden_processing_seconds_count{kind="evaluation"}': 1 });
  });

  it('counts promotion, regression, rollback, pause and resume; gauges follow the actors', async () => {
    const t = await startTestService();
    running.push(t);
    const start = await scrape(t);
    expect(start.get('warden_models{state="healthy"}')).toBe(0);
    expect(start.get('warden_paused_configs')).toBe(0);

    await promoteTwo(t);
    const promoted = await scrape(t);
    expect(moved(start, promoted)).toMatchObject({
      'warden_promotions_total{outcome="promoted"}': 2,
      'warden_models{state="healthy"}': 1,
      'warden_processing_seconds_count{kind="promotion"}': 2,
    });

    // A critical regression: automatic rollback, the config pauses, an alert goes out.
    await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'hex8_2p', current_elo: 1400, games_played: 100 },
      PRODUCER_TOKEN,
    );
    const rolledBack = await scrape(t);
    expect(moved(promoted, rolledBack)).toMatchObject({
      'warden_evaluations_total{outcome="regression"}': 1,
      'warden_regressions_total{severity="critical",decision="rollback"}': 1,
      'warden_rollbacks_total{trigger="auto_regression_critical",result="succeeded"}': 1,
      warden_training_pauses_total: 1,
      warden_paused_configs: 1,
      'warden_alerts_total{kind="critical_regression",level="critical"}': 1,
      'warden_models{state="healthy"}': -1,
      'warden_models{state="cooldown"}': 1,
      'warden_transitions_total{actor="training",from="running",to="paused"}': 1,
    });

    await t.api('POST', '/v1/training/hex8_2p/resume', {}, OPERATOR_TOKEN);
    const resumed = await scrape(t);
    expect(moved(rolledBack, resumed)).toMatchObject({
      warden_training_resumes_total: 1,
      warden_paused_configs: -1,
      'warden_processing_seconds_count{kind="command"}': 1,
    });

    // Refused inputs are counted by reason; HTTP requests by route and status.
    await t.api('POST', '/v1/evaluations', { model_id: 'hex8_2p', games_played: -1 }, PRODUCER_TOKEN);
    await t.api('POST', '/v1/evaluations', { model_id: 'ghost', games_played: 60 }, PRODUCER_TOKEN);
    const rejected = await scrape(t);
    expect(moved(resumed, rejected)).toMatchObject({
      'warden_rejected_inputs_total{kind="evaluation",reason="invalid_input"}': 1,
      'warden_rejected_inputs_total{kind="evaluation",reason="unknown_model"}': 1,
      'warden_http_requests_total{method="POST",route="/v1/evaluations",status="400"}': 1,
      'warden_http_requests_total{method="POST",route="/v1/evaluations",status="404"}': 1,
    });
  });

  it('counts pending approvals, and keeps each service on its own registry', async () => {
    const a = await startTestService({ approval: { requireForSevere: true } });
    const b = await startTestService();
    running.push(a, b);
    await promoteTwo(a);
    await a.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'hex8_2p', current_elo: 1460, games_played: 100 },
      PRODUCER_TOKEN,
    );
    const scrapeA = await scrape(a);
    expect(scrapeA.get('warden_pending_approvals')).toBe(1);
    expect(scrapeA.get('warden_models{state="awaitingApproval"}')).toBe(1);
    expect(scrapeA.get('warden_regressions_total{severity="severe",decision="await_approval"}')).toBe(1);
    const scrapeB = await scrape(b);
    expect(scrapeB.get('warden_pending_approvals')).toBe(0);
    expect(scrapeB.has('warden_promotions_total{outcome="promoted"}')).toBe(false);

    await a.api('POST', '/v1/models/hex8_2p/approve', {}, OPERATOR_TOKEN);
    expect((await scrape(a)).get('warden_pending_approvals')).toBe(0);
  });
});

describe('metrics: sources', () => {
  it('counts failed rollbacks by trigger, rejected inputs from the bus hook, and failed effects', async () => {
    const metrics = createMetrics();
    metrics.observer.published?.({
      type: 'ROLLBACK_FAILED',
      payload: {
        event_id: 'e1',
        timestamp: 1,
        rollback_id: 'r1',
        detection_id: null,
        model_id: 'm',
        config_key: 'm',
        from_version: 'v2',
        to_version: 'v1',
        triggered_by: 'manual',
        by: 'alice',
        reason: 'x',
        error: 'registry down',
      },
    });
    metrics.onRejected('promotion', new WardenError('invalid_input', 'bad'));
    metrics.observer.effectFailed?.('registry.rollback', new Error('down'));
    metrics.alertDelivery('retried');
    const samples = parseMetrics(await metrics.render());
    expect(samples.get('warden_rollbacks_total{trigger="manual",result="failed"}')).toBe(1);
    expect(samples.get('warden_rejected_inputs_total{kind="promotion",reason="invalid_input"}')).toBe(1);
    expect(samples.get('warden_effect_failures_total{what="registry.rollback"}')).toBe(1);
    expect(samples.get('warden_alert_webhook_deliveries_total{result="retried"}')).toBe(1);
    // Unbound gauges read as zero rather than failing the scrape.
    expect(samples.get('warden_pending_approvals')).toBe(0);
  });

  it('counts the states once per scrape, for every gauge that reads them', async () => {
    const metrics = createMetrics();
    let counted = 0;
    metrics.bind({
      stateCounts: () => {
        counted++;
        return {
          models: new Map([
            ['healthy', 3],
            ['awaitingApproval', 2],
          ]),
          pausedConfigs: 1,
          unpublishedEvents: 7,
        };
      },
    });
    const samples = parseMetrics(await metrics.render());
    expect(counted).toBe(1);
    expect(samples.get('warden_models{state="healthy"}')).toBe(3);
    expect(samples.get('warden_pending_approvals')).toBe(2);
    expect(samples.get('warden_paused_configs')).toBe(1);
    expect(samples.get('warden_events_unpublished')).toBe(7);
    await metrics.render();
    expect(counted).toBe(2);
  });

  it('says whether the gauges count every model yet: 0 while an instance still reads the stored state', async () => {
    const metrics = createMetrics();
    expect(parseMetrics(await metrics.render()).get('warden_state_read')).toBe(0); // nothing bound yet
    let read = false;
    const counts = { models: new Map<string, number>(), pausedConfigs: 0 };
    metrics.bind({ stateCounts: () => counts, stateRead: () => read });
    expect(parseMetrics(await metrics.render()).get('warden_state_read')).toBe(0);
    read = true;
    expect(parseMetrics(await metrics.render()).get('warden_state_read')).toBe(1);
  });
});
