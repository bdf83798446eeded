import type { Logger } from 'pino';
import type { Clock, EventBus } from '../actors/ports.ts';
import { AlertSchema } from '../domain/events.ts';
import { slackMessage, type Alert } from './slack.ts';

/** Waits `ms`, or less when `signal` aborts (shutdown): retries must never hold the service. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

export function clockSleep(clock: Clock): Sleep {
  return (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const handle = clock.setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clock.clearTimeout(handle);
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
}

export interface AlertWebhookOptions {
  readonly url: string;
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  /** Backoff doubles per attempt up to this (and Retry-After is honoured up to it too). */
  readonly maxBackoffMs?: number;
  /** One attempt gives up after this long. */
  readonly attemptTimeoutMs?: number;
  /** Deliveries in progress beyond this are dropped (and logged) rather than piled up. */
  readonly maxPending?: number;
  readonly logger: Logger;
  readonly sleep: Sleep;
  readonly onAttempt?: (result: 'delivered' | 'retried' | 'failed') => void;
}

type AttemptResult =
  { ok: true } | { ok: false; retry: boolean; retryAfterMs: number | null; problem: string };

function retryAfterMs(header: string | null): number | null {
  if (header === null) return null;
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : null;
}

/**
 * Posts alerts to a Slack-compatible webhook. Each alert is delivered on its own, in the background,
 * retried with exponential backoff on network errors, timeouts, 408, 429 and 5xx; other answers are
 * final. Nothing here throws into the caller or delays the service, and close() abandons what is left.
 */
export class AlertWebhook {
  private readonly pending = new Set<Promise<void>>();
  private readonly shutdown = new AbortController();

  constructor(private readonly options: AlertWebhookOptions) {}

  deliver(alert: Alert): void {
    if (this.shutdown.signal.aborted) return;
    if (this.pending.size >= (this.options.maxPending ?? 100)) {
      this.options.logger.error(
        { alert: alert.event_id, kind: alert.kind },
        'alert webhook backlog full: alert dropped',
      );
      return;
    }
    const work = this.deliverWithRetries(alert).finally(() => this.pending.delete(work));
    this.pending.add(work);
  }

  /** Resolves when every delivery started so far has finished (delivered or given up). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  async close(): Promise<void> {
    const abandoned = this.pending.size;
    this.shutdown.abort();
    await this.idle();
    if (abandoned > 0)
      this.options.logger.warn({ abandoned }, 'alert webhook: shutdown abandoned deliveries in progress');
  }

  private async deliverWithRetries(alert: Alert): Promise<void> {
    const { maxAttempts, initialBackoffMs, logger } = this.options;
    const maxBackoff = this.options.maxBackoffMs ?? 60_000;
    const body = JSON.stringify(slackMessage(alert));
    for (let attempt = 1; ; attempt++) {
      const result = await this.attempt(body);
      if (this.shutdown.signal.aborted) return;
      if (result.ok) {
        this.options.onAttempt?.('delivered');
        logger.info({ alert: alert.event_id, kind: alert.kind, attempt }, 'alert delivered to the webhook');
        return;
      }
      if (!result.retry || attempt >= maxAttempts) {
        this.options.onAttempt?.('failed');
        logger.error(
          { alert: alert.event_id, kind: alert.kind, attempt, problem: result.problem },
          'alert webhook: giving up',
        );
        return;
      }
      this.options.onAttempt?.('retried');
      const delay = Math.min(result.retryAfterMs ?? initialBackoffMs * 2 ** (attempt - 1), maxBackoff);
      logger.warn(
        { alert: alert.event_id, attempt, problem: result.problem, retryInMs: delay },
        'alert webhook failed; retrying',
      );
      await this.options.sleep(delay, this.shutdown.signal);
      if (this.shutdown.signal.aborted) return;
    }
  }

  private async attempt(body: string): Promise<AttemptResult> {
    const signal = AbortSignal.any([
      this.shutdown.signal,
      AbortSignal.timeout(this.options.attemptTimeoutMs ?? 10_000),
    ]);
    try {
      const response = await fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal,
      });
      // Drain the body so the connection can be reused; its content only matters for the log.
      const text = (await response.text().catch(() => '')).slice(0, 200);
      if (response.ok) return { ok: true };
      const retry = response.status === 408 || response.status === 429 || response.status >= 500;
      return {
        ok: false,
        retry,
        retryAfterMs: retryAfterMs(response.headers.get('retry-after')),
        problem: `HTTP ${response.status} ${text}`.trim(),
      };
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      return {
        ok: false,
        retry: true,
        retryAfterMs: null,
        problem: `${(error as Error).message}${cause ? ` (${cause})` : ''}`,
      };
    }
  }
}

/**
 * Sends every ALERT Warden publishes (`<prefix>.evt.alert.*`) to the webhook. The bus handler only hands
 * the alert over, so a slow or failing webhook never holds the bus.
 */
export function attachAlertWebhook(
  bus: EventBus,
  prefix: string,
  webhook: AlertWebhook,
  logger: Logger,
): { close(): Promise<void> } {
  const unsubscribe = bus.subscribe(`${prefix}.evt.alert.*`, (message) => {
    const parsed = AlertSchema.safeParse(message.data);
    if (!parsed.success) {
      logger.warn({ subject: message.subject }, 'alert webhook: ignored a message that is not an alert');
      return;
    }
    webhook.deliver(parsed.data);
  });
  return {
    async close() {
      unsubscribe();
      await webhook.close();
    },
  };
}
