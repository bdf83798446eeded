import type { Alert } from './format.ts';

/**
 * One alert on its way to one target. Its id (`<event_id>.<target id>`) is what makes a delivery happen
 * once: a replayed alert, a second instance or a restart finds the record and does not send it again.
 */
export interface DeliveryRecord {
  readonly id: string;
  readonly target: string;
  readonly alert: Alert;
  /** Attempts made so far. */
  readonly attempts: number;
  /** Epoch ms: not before this (backoff); a pending record past it is due. */
  readonly dueAt: number;
  readonly status: 'pending' | 'delivered' | 'failed';
  /** The last failure, for the log and for operators reading the ledger. */
  readonly problem: string | null;
}

/**
 * Where deliveries are remembered, so that a restart loses none and repeats none. One adapter per mode:
 * SQLite beside the embedded state, a KV bucket in NATS mode.
 */
export interface AlertLedger {
  get(id: string): Promise<DeliveryRecord | null>;
  put(record: DeliveryRecord): Promise<void>;
  close(): Promise<void>;
}

export const deliveryId = (alert: Alert, targetId: string): string => `${alert.event_id}.${targetId}`;
