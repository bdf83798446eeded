import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { afterAttempt, newDelivery, type AttemptResult } from '../../src/alerts/deliver.ts';
import { alertBody, slackMessage, type Alert } from '../../src/alerts/format.ts';
import { alertTargets, targetsFor } from '../../src/alerts/targets.ts';
import { parseConfig } from '../../src/config/load.ts';
import { ALERT_KINDS, AlertSchema } from '../../src/domain/events.ts';

const alert: Alert = {
  event_id: 'hex8_2p.e4',
  timestamp: 1_767_225_600,
  model_id: 'hex8_2p',
  config_key: 'hex8_2p',
  level: 'critical',
  kind: 'critical_regression',
  message: 'CRITICAL regression of hex8_2p v2: Elo dropped by 120 <critical>',
};
const policy = { maxAttempts: 5, initialBackoffMs: 500, maxBackoffMs: 60_000 };

describe('alert routing', () => {
  it('sends each alert to the routes that take its level (and kind), the legacy webhook to all', () => {
    const config = parseConfig({
      alerts: {
        webhookUrl: 'https://hooks.slack.example/services/T/B/secret',
        routes: [
          { url: 'https://pager.example/critical', levels: ['critical'] },
          { url: 'https://ops.example/all', format: 'slack' },
          { url: 'https://ops.example/approvals', kinds: ['approval_requested'] },
        ],
      },
    }).alerts;
    const targets = alertTargets(config);
    expect(targets.map((t) => [t.format, new URL(t.url).pathname])).toEqual([
      ['slack', '/services/T/B/secret'],
      ['json', '/critical'],
      ['slack', '/all'],
      ['json', '/approvals'],
    ]);
    const to = (level: Alert['level'], kind: Alert['kind']) =>
      targetsFor({ ...alert, level, kind }, targets).map((t) => new URL(t.url).pathname);
    expect(to('warning', 'approval_expired')).toEqual(['/services/T/B/secret', '/all']);
    expect(to('critical', 'critical_regression')).toEqual(['/services/T/B/secret', '/critical', '/all']);
    expect(to('critical', 'approval_requested')).toEqual([
      '/services/T/B/secret',
      '/critical',
      '/all',
      '/approvals',
    ]);
    // Target ids do not depend on the order of the routes (a pending delivery keeps its target).
    const reversed = alertTargets({ ...config, routes: [...config.routes].reverse() });
    expect(new Set(reversed.map((t) => t.id))).toEqual(new Set(targets.map((t) => t.id)));
  });

  it('refuses a route without a level, or with a level or kind that does not exist', () => {
    for (const route of [
      { url: 'https://x.example', levels: [] },
      { url: 'https://x.example', levels: ['info'] },
      { url: 'https://x.example', kinds: ['everything'] },
      { url: 'not a url' },
    ]) {
      expect(() => parseConfig({ alerts: { routes: [route] } }), JSON.stringify(route)).toThrow(
        /alerts\.routes/,
      );
    }
  });
});

describe('alert bodies', () => {
  it('Slack: text, blocks with the details as fields, and the raw alert; JSON: the alert itself', () => {
    const withDetails: Alert = {
      ...alert,
      details: { deadline: 1_767_229_200, elo: 1460, none: null },
    };
    const slack = slackMessage(withDetails);
    expect(slack.text).toBe(
      '[CRITICAL] Critical regression: hex8_2p: CRITICAL regression of hex8_2p v2: Elo dropped by 120 &lt;critical&gt;',
    );
    expect(slack.blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: 'Warden critical: Critical regression: hex8_2p' },
    });
    expect(slack.blocks[2]).toEqual({
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: '*deadline*\n2026-01-01T01:00:00.000Z' },
        { type: 'mrkdwn', text: '*elo*\n1460' },
      ],
    });
    expect(slack.warden_alert).toEqual(withDetails);
    expect(JSON.parse(alertBody(withDetails, 'json'))).toEqual(withDetails);
  });

  it('every kind has a Slack title, and any alert the schema accepts renders', () => {
    const arbitraryAlert = fc.record({
      event_id: fc.string({ minLength: 1 }),
      timestamp: fc.integer({ min: 0, max: 4_000_000_000 }),
      model_id: fc.string(),
      config_key: fc.string(),
      level: fc.constantFrom('critical' as const, 'warning' as const),
      kind: fc.constantFrom(...ALERT_KINDS),
      message: fc.string({ maxLength: 5000 }),
      details: fc.option(
        fc.dictionary(
          fc.string(),
          fc.oneof(
            fc.string(),
            fc.double({ noNaN: true, noDefaultInfinity: true }),
            fc.boolean(),
            fc.constant(null),
          ),
        ),
        {
          nil: undefined,
        },
      ),
    });
    fc.assert(
      fc.property(arbitraryAlert, (raw) => {
        const parsed = AlertSchema.parse(raw);
        const slack = slackMessage(parsed);
        expect(slack.text).not.toContain('undefined');
        expect(slack.text).not.toMatch(/[<>]/);
        expect(JSON.parse(JSON.stringify(slack)).warden_alert.kind).toBe(raw.kind);
      }),
    );
  });
});

describe('retry policy', () => {
  const target = alertTargets(parseConfig({ alerts: { routes: [{ url: 'https://x.example' }] } }).alerts)[0]!;
  const failure = (retry: boolean, retryAfterMs: number | null = null): AttemptResult => ({
    ok: false,
    retry,
    retryAfterMs,
    problem: 'HTTP 500',
  });

  it('delivers, gives up on a final answer, and backs off exponentially up to maxAttempts', () => {
    const fresh = newDelivery('hex8_2p.e4.x', target, alert, 1000);
    expect(afterAttempt(fresh, { ok: true }, 1000, policy)).toMatchObject({
      status: 'delivered',
      attempts: 1,
    });
    expect(afterAttempt(fresh, failure(false), 1000, policy)).toMatchObject({
      status: 'failed',
      attempts: 1,
    });
    let record = fresh;
    const dues: number[] = [];
    for (let i = 0; i < 5; i++) {
      record = afterAttempt(record, failure(true), 1000, policy);
      dues.push(record.dueAt - 1000);
    }
    expect(record).toMatchObject({ status: 'failed', attempts: 5, problem: 'HTTP 500' });
    expect(dues.slice(0, 4)).toEqual([500, 1000, 2000, 4000]);
  });

  it('never schedules beyond the cap nor before now, whatever Retry-After says', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 30 }),
        fc.option(fc.integer({ min: 0, max: 10 ** 12 }), { nil: null }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        (attempts, retryAfter, now) => {
          const record = { ...newDelivery('x', target, alert, now), attempts };
          const next = afterAttempt(record, failure(true, retryAfter), now, { ...policy, maxAttempts: 100 });
          expect(next.attempts).toBe(attempts + 1);
          expect(next.dueAt).toBeGreaterThanOrEqual(now);
          expect(next.dueAt - now).toBeLessThanOrEqual(policy.maxBackoffMs);
        },
      ),
    );
  });
});
