export const TRAINING_STATES = ['running', 'paused'] as const;
export type TrainingStateName = (typeof TRAINING_STATES)[number];

export interface TrainingContext {
  readonly configKey: string;
  /** Who paused or resumed last, why, and when (ms). */
  readonly by: string | null;
  readonly reason: string | null;
  readonly since: number | null;
  /** The rollbacks that paused this config (bounded); a redelivered one pauses nothing twice. */
  readonly rollbackIds: readonly string[];
  /** When the optional auto-resume fires (ms), or null. */
  readonly autoResumeAt: number | null;
  readonly seq: number;
}

export type TrainingEvent =
  | {
      type: 'PAUSE';
      at: number;
      by: string;
      reason: string;
      modelId?: string | undefined;
      rollbackId?: string | undefined;
      fromVersion?: string | undefined;
      toVersion?: string | undefined;
    }
  | { type: 'RESUME'; at: number; by: string; note?: string | undefined }
  /** Carries the deadline it was armed for; the runtime never sends it before that. */
  | { type: 'AUTO_RESUME_ELAPSED'; at: number; deadline?: number | undefined };

export type TrainingEventType = TrainingEvent['type'];

export type TrainingOutcome =
  | { kind: 'paused' }
  | { kind: 'already_paused' }
  | { kind: 'resumed' }
  | { kind: 'not_paused' }
  | { kind: 'duplicate'; rollbackId: string }
  | { kind: 'stale'; reason: string };

export interface TrainingPolicy {
  /** Resume by itself this long after a pause; null: only an operator resumes. */
  readonly autoResumeMs: number | null;
}
