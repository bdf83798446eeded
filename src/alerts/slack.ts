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
};

/** Slack renders `<`, `>` and `&` as markup; escape them in text that comes from payloads. */
const escape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function slackMessage(alert: Alert): SlackMessage {
  const title = `${TITLES[alert.kind]}: ${alert.model_id}`;
  const at = new Date(alert.timestamp * 1000).toISOString();
  return {
    // `text` is the notification and the fallback where blocks are not shown.
    text: `[${alert.level.toUpperCase()}] ${escape(title)}: ${escape(alert.message)}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: `Warden ${alert.level}: ${title}`.slice(0, 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: escape(alert.message).slice(0, 3000) } },
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
