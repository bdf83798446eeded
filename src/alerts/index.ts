import type { Logger } from 'pino';
import { systemClock, type Clock } from '../actors/ports.ts';
import type { Config } from '../config/schema.ts';
import type { Warden } from '../warden.ts';
import { AlertWebhook, attachAlertWebhook, clockSleep } from './webhook.ts';

/**
 * Alerts to the configured webhook, or null when none is configured (alerts are on the bus either way).
 * Retries wait on the service's clock, so a test's manual clock drives them.
 */
export function startAlerts(
  warden: Warden,
  config: Config['alerts'],
  deps: {
    logger: Logger;
    clock?: Clock | undefined;
    onAttempt?: (result: 'delivered' | 'retried' | 'failed') => void;
  },
): { endpoint: string; close(): Promise<void> } | null {
  if (!config.webhookUrl) return null;
  const logger = deps.logger.child({ component: 'alerts' });
  const webhook = new AlertWebhook({
    url: config.webhookUrl,
    maxAttempts: config.maxAttempts,
    initialBackoffMs: config.initialBackoffMs,
    logger,
    sleep: clockSleep(deps.clock ?? systemClock),
    onAttempt: deps.onAttempt,
  });
  const attached = attachAlertWebhook(warden.bus, warden.prefix, webhook, logger);
  // A webhook URL is a secret (Slack's carries the key in its path): only its origin is ever logged.
  return {
    endpoint: `alerts: webhook at ${new URL(config.webhookUrl).origin}`,
    close: () => attached.close(),
  };
}
