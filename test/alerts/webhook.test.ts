import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { AlertWebhook, clockSleep, type Sleep } from '../../src/alerts/webhook.ts';
import type { Alert } from '../../src/alerts/slack.ts';
import { silentLogger } from '../../src/logger.ts';
import {
  PRODUCER_TOKEN,
  parseMetrics,
  promoteTwo,
  startTestService,
  type TestService,
} from '../http/support.ts';

interface Received {
  body: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the posted JSON
  contentType: string | undefined;
}

/** A local webhook receiver that answers each request with the next status of `statuses` (then 200). */
async function webhookServer(statuses: number[]) {
  const received: Received[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const server = http.createServer((request, response) => {
    let data = '';
    request.on('data', (chunk) => (data += chunk));
    request.on('end', () => {
      received.push({ body: JSON.parse(data), contentType: request.headers['content-type'] });
      response.writeHead(statuses.shift() ?? 200).end('ok');
      for (const w of waiters.filter((w) => received.length >= w.count)) w.resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    received,
    /** Resolves once `count` requests have arrived (the test's own timeout bounds the wait). */
    until(count: number): Promise<void> {
      if (received.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const alert: Alert = {
  event_id: 'hex8_2p.e4',
  timestamp: 1_767_225_600,
  model_id: 'hex8_2p',
  config_key: 'hex8_2p',
  level: 'critical',
  kind: 'critical_regression',
  message: 'CRITICAL regression of hex8_2p v2: Elo dropped by 120 <critical>',
};

/** Records every backoff and returns at once: no test waits on the wall clock. */
function recordingSleep(): { sleep: Sleep; delays: number[] } {
  const delays: number[] = [];
  return { delays, sleep: async (ms) => void delays.push(ms) };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describe('alerts: webhook delivery', () => {
  it('posts Slack-compatible JSON with the raw alert, and retries after a 500', async () => {
    const server = await webhookServer([500]);
    closers.push(server.close);
    const { sleep, delays } = recordingSleep();
    const results: string[] = [];
    const webhook = new AlertWebhook({
      url: server.url,
      maxAttempts: 5,
      initialBackoffMs: 500,
      logger: silentLogger,
      sleep,
      onAttempt: (r) => results.push(r),
    });
    webhook.deliver(alert);
    await webhook.idle();
    expect(server.received).toHaveLength(2);
    expect(delays).toEqual([500]);
    expect(results).toEqual(['retried', 'delivered']);
    const posted = server.received[1]!;
    expect(posted.contentType).toBe('application/json');
    expect(posted.body.text).toBe(
      '[CRITICAL] Critical regression: hex8_2p: CRITICAL regression of hex8_2p v2: Elo dropped by 120 &lt;critical&gt;',
    );
    expect(posted.body.blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: 'Warden critical: Critical regression: hex8_2p' },
    });
    expect(posted.body.warden_alert).toEqual(alert);
  });

  it('backs off exponentially and gives up after maxAttempts', async () => {
    const server = await webhookServer([503, 502, 500, 500, 500]);
    closers.push(server.close);
    const { sleep, delays } = recordingSleep();
    const results: string[] = [];
    const webhook = new AlertWebhook({
      url: server.url,
      maxAttempts: 4,
      initialBackoffMs: 100,
      logger: silentLogger,
      sleep,
      onAttempt: (r) => results.push(r),
    });
    webhook.deliver(alert);
    await webhook.idle();
    expect(server.received).toHaveLength(4);
    expect(delays).toEqual([100, 200, 400]);
    expect(results).toEqual(['retried', 'retried', 'retried', 'failed']);
  });

  it('does not retry an answer that will not change (400), and retries when nobody listens', async () => {
    const server = await webhookServer([400]);
    closers.push(server.close);
    const { sleep, delays } = recordingSleep();
    const final = new AlertWebhook({
      url: server.url,
      maxAttempts: 5,
      initialBackoffMs: 100,
      logger: silentLogger,
      sleep,
    });
    final.deliver(alert);
    await final.idle();
    expect(server.received).toHaveLength(1);
    expect(delays).toEqual([]);

    const closed = await webhookServer([]);
    await closed.close();
    const unreachable = new AlertWebhook({
      url: closed.url,
      maxAttempts: 3,
      initialBackoffMs: 100,
      logger: silentLogger,
      sleep,
    });
    unreachable.deliver(alert);
    await unreachable.idle();
    expect(delays).toEqual([100, 200]);
  });

  it('close() abandons a delivery waiting to retry, without waiting for the backoff', async () => {
    const server = await webhookServer([500]);
    closers.push(server.close);
    const clock = new ManualClock();
    const webhook = new AlertWebhook({
      url: server.url,
      maxAttempts: 5,
      initialBackoffMs: 60_000,
      logger: silentLogger,
      sleep: clockSleep(clock),
    });
    webhook.deliver(alert);
    await server.until(1);
    await vi.waitFor(() => expect(clock.pendingTimers()).toBe(1));
    await webhook.close();
    expect(clock.pendingTimers()).toBe(0);
    expect(server.received).toHaveLength(1);
    // After close, alerts are dropped rather than started.
    webhook.deliver(alert);
    await webhook.idle();
    expect(server.received).toHaveLength(1);
  });
});

describe('alerts: from a running service', () => {
  let t: TestService | null = null;
  afterEach(async () => {
    await t?.close();
    t = null;
  });

  it('sends a critical regression to the configured webhook, retrying on the service clock', async () => {
    const server = await webhookServer([500]);
    closers.push(server.close);
    t = await startTestService({ alerts: { webhookUrl: server.url, maxAttempts: 3, initialBackoffMs: 250 } });
    expect(t.service.endpoints).toContain(`alerts: webhook at ${new URL(server.url).origin}`);
    await promoteTwo(t);
    await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'hex8_2p', current_elo: 1400, games_played: 100 },
      PRODUCER_TOKEN,
    );
    await server.until(1);
    // The retry waits on the service's manual clock: move it until the second attempt arrives.
    const clock = t.clock;
    await vi.waitFor(() => {
      clock.advance(250);
      expect(server.received).toHaveLength(2);
    });
    const posted = server.received[1]!.body;
    expect(posted.warden_alert).toMatchObject({
      kind: 'critical_regression',
      level: 'critical',
      model_id: 'hex8_2p',
    });
    expect(posted.text).toMatch(/^\[CRITICAL\] Critical regression: hex8_2p: /);
    const samples = parseMetrics((await t.api('GET', '/metrics')).text);
    expect(samples.get('warden_alert_webhook_deliveries_total{result="retried"}')).toBe(1);
    expect(samples.get('warden_alert_webhook_deliveries_total{result="delivered"}')).toBe(1);
  });
});
