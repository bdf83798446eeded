import { isoTime } from './kv-util.ts';

/**
 * The value under `<prefix>_training.<config_key>`, which trainers read (or watch) before training:
 * "paused" means do not train. A config Warden never paused has no entry: it is running.
 */
export interface TrainingEntry {
  config_key: string;
  status: 'running' | 'paused';
  reason: string | null;
  /** ISO 8601: when the status last changed. */
  since: string | null;
  by: string | null;
}

interface StoredTrainingSnapshot {
  snapshot?: {
    value?: unknown;
    context?: { configKey?: unknown; reason?: unknown; since?: unknown; by?: unknown };
  };
}

/** What trainers see of a training-config actor, from its persisted snapshot (null if it is not one). */
export function trainingEntryFrom(configKey: string, stored: unknown): TrainingEntry | null {
  const snapshot = (stored as StoredTrainingSnapshot | null)?.snapshot;
  const status = snapshot?.value;
  if (status !== 'running' && status !== 'paused') return null;
  const context = snapshot?.context ?? {};
  return {
    config_key: configKey,
    status,
    reason: typeof context.reason === 'string' ? context.reason : null,
    since: typeof context.since === 'number' ? isoTime(context.since) : null,
    by: typeof context.by === 'string' ? context.by : null,
  };
}
