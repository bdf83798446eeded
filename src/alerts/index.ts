import { join } from 'node:path';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../actors/ports.ts';
import type { Config } from '../config/schema.ts';
import type { Warden } from '../warden.ts';
import { httpSend, type Send } from './deliver.ts';
import { EmbeddedAlertDelivery, type AlertDriverDeps } from './embedded.ts';
import { KvAlertLedger } from './kv-ledger.ts';
import { NatsAlertDelivery } from './nats.ts';
import { SqliteAlertLedger } from './sqlite-ledger.ts';
import { alertTargets, origin } from './targets.ts';

export interface AlertsDeps {
  readonly logger: Logger;
  readonly clock?: Clock | undefined;
  readonly onAttempt?: (result: 'delivered' | 'retried' | 'failed') => void;
  /** Tests replace the HTTP attempt; the service posts with fetch. */
  readonly send?: Send;
}

export interface Alerts {
  readonly endpoint: string;
  /** Embedded mode: resolves when no attempt is running. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Alerts to the configured webhooks (routed by level), or null when none is configured (alerts are on the
 * bus either way). Pending deliveries survive restarts: SQLite beside the embedded state, or the alert
 * stream's redelivery and a shared KV ledger in NATS mode, where one instance delivers each alert.
 */
export async function startAlerts(warden: Warden, config: Config, deps: AlertsDeps): Promise<Alerts | null> {
  const targets = alertTargets(config.alerts);
  if (targets.length === 0) return null;
  const clock = deps.clock ?? systemClock;
  const driverDeps: AlertDriverDeps = {
    bus: warden.bus,
    prefix: warden.prefix,
    targets,
    send: deps.send ?? httpSend(config.alerts.attemptTimeoutMs),
    policy: {
      maxAttempts: config.alerts.maxAttempts,
      initialBackoffMs: config.alerts.initialBackoffMs,
      maxBackoffMs: config.alerts.maxBackoffMs,
    },
    clock,
    logger: deps.logger.child({ component: 'alerts' }),
    onAttempt: deps.onAttempt,
  };
  // A webhook URL is a secret (Slack's carries the key in its path): only its origin is ever logged.
  const where = targets
    .map((t) => `${t.format} webhook at ${origin(t.url)} (${t.levels.join(', ')})`)
    .join('; ');
  if (config.nats.url) {
    const delivery = new NatsAlertDelivery(await KvAlertLedger.open(config.nats, deps.logger), driverDeps);
    delivery.start();
    return { endpoint: `alerts: ${where}`, idle: async () => {}, close: () => delivery.close() };
  }
  const ledger = new SqliteAlertLedger(join(config.dataDir, 'alerts.db'), clock.now());
  const delivery = new EmbeddedAlertDelivery(ledger, driverDeps);
  delivery.start();
  return { endpoint: `alerts: ${where}`, idle: () => delivery.idle(), close: () => delivery.close() };
}
