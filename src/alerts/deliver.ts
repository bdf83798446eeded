import type { Alert } from './format.ts';
import { alertBody } from './format.ts';
import type { DeliveryRecord } from './ledger.ts';
import type { AlertTarget } from './targets.ts';

export type AttemptResult =
  { ok: true } | { ok: false; retry: boolean; retryAfterMs: number | null; problem: string };

/** Posts one alert to one target, once. Network errors, timeouts, 408, 429 and 5xx may be retried. */
export type Send = (target: AlertTarget, alert: Alert, signal: AbortSignal) => Promise<AttemptResult>;

function retryAfterMs(header: string | null): number | null {
  if (header === null) return null;
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : null;
}

export function httpSend(attemptTimeoutMs: number): Send {
  return async (target, alert, shutdown) => {
    const signal = AbortSignal.any([shutdown, AbortSignal.timeout(attemptTimeoutMs)]);
    try {
      const response = await fetch(target.url, {
        method: 'POST',
        // The event id lets a receiver drop the rare repeat (a crash between its answer and our record).
        headers: { 'content-type': 'application/json', 'idempotency-key': alert.event_id },
        body: alertBody(alert, target.format),
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
  };
}

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

export function newDelivery(id: string, target: AlertTarget, alert: Alert, now: number): DeliveryRecord {
  return { id, target: target.id, alert, attempts: 0, dueAt: now, status: 'pending', problem: null };
}

/**
 * What one attempt makes of a record: delivered, given up (a final answer, or maxAttempts reached), or
 * pending again after an exponential backoff (Retry-After honoured, both capped).
 */
export function afterAttempt(
  record: DeliveryRecord,
  result: AttemptResult,
  now: number,
  policy: RetryPolicy,
): DeliveryRecord {
  const attempts = record.attempts + 1;
  if (result.ok) return { ...record, attempts, status: 'delivered', problem: null };
  if (!result.retry || attempts >= policy.maxAttempts)
    return { ...record, attempts, status: 'failed', problem: result.problem };
  const backoff = result.retryAfterMs ?? policy.initialBackoffMs * 2 ** (attempts - 1);
  return {
    ...record,
    attempts,
    dueAt: now + Math.min(backoff, policy.maxBackoffMs),
    status: 'pending',
    problem: result.problem,
  };
}
