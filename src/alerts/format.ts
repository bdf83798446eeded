import type { z } from 'zod';
import type { AlertSchema } from '../domain/events.ts';

export type Alert = z.output<typeof AlertSchema>;

/** The JSON a Slack incoming webhook takes (`text`, `blocks`), with the raw alert for other receivers. */
export interface SlackMessage {
  text: string;
  blocks: Array<Record<string, unknown>>;
  warden_alert: Alert;
}

const TITLES: Record<Alert['kind'], string> = {
  critical_regression: 'Critical regression',
  rollback_failed: 'Rollback failed',
  approval_expired: 'Approval expired',
  rate_limited: 'Automatic rollbacks rate-limited',
  pause_unacknowledged: 'Training pause not acknowledged',
  input_dead_lettered: 'Input moved to the dead letter',
  approval_requested: 'Approval requested',
  rolled_back: 'Rolled back, training paused',
};

/** Slack renders `<`, `>` and `&` as markup; escape them in text that comes from payloads. */
const escape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Times in details are epoch seconds, like the events' own; people read them as ISO times. */
const detailText = (key: string, value: string | number | boolean | null): string =>
  key === 'deadline' && typeof value === 'number' ? new Date(value * 1000).toISOString() : String(value);

export function slackMessage(alert: Alert): SlackMessage {
  const title = `${TITLES[alert.kind]}: ${alert.model_id}`;
  const at = new Date(alert.timestamp * 1000).toISOString();
  const details = Object.entries(alert.details ?? {}).filter(([, value]) => value !== null);
  return {
    // `text` is the notification and the fallback where blocks are not shown.
    text: `[${alert.level.toUpperCase()}] ${escape(title)}: ${escape(alert.message)}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: `Warden ${alert.level}: ${title}`.slice(0, 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: escape(alert.message).slice(0, 3000) } },
      // The evidence and the deadline, as Slack's two-column fields (at most 10).
      ...(details.length > 0
        ? [
            {
              type: 'section',
              fields: details.slice(0, 10).map(([key, value]) => ({
                type: 'mrkdwn',
                text: `*${escape(key)}*\n${escape(detailText(key, value)).slice(0, 1900)}`,
              })),
            },
          ]
        : []),
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `model \`${escape(alert.model_id)}\` · config \`${escape(alert.config_key)}\` · ${alert.kind} · ${at} · event ${escape(alert.event_id)}`,
          },
        ],
      },
    ],
    warden_alert: alert,
  };
}

/** The body posted to a target: Slack's message, or the alert itself as published on the bus. */
export function alertBody(alert: Alert, format: 'slack' | 'json'): string {
  return JSON.stringify(format === 'slack' ? slackMessage(alert) : alert);
}
