import type { Severity } from '../policy/severity.ts';
import type { EvaluationMetrics } from '../policy/classify.ts';
import type { RollbackTrigger, Statistics } from '../domain/events.ts';

export const MODEL_STATES = [
  'healthy',
  'regressed',
  'awaitingApproval',
  'rollingBack',
  'rolledBack',
  'cooldown',
] as const;
export type ModelStateName = (typeof MODEL_STATES)[number];

/** A version that was once in production, with the baseline it was promoted with. */
export interface LineageEntry {
  readonly version: string;
  readonly elo: number | null;
  readonly winRate: number | null;
  readonly promotedAt: number;
  /** Warden rolled back away from this version: it is never a rollback target again. */
  readonly rolledBackFrom: boolean;
}

export interface Detection {
  readonly detectionId: string;
  readonly severity: Severity;
  readonly at: number;
  readonly currentElo: number | null;
  readonly reason: string;
}

export type HeldBecause = 'approval_required' | 'cooldown' | 'rate_limit';

export interface EvidenceEntry {
  readonly at: number;
  readonly severity: Severity | null;
  readonly reason: string;
  readonly gamesPlayed: number;
}

export interface PendingApproval {
  readonly detectionId: string;
  readonly severity: Severity;
  readonly reason: string;
  readonly heldBecause: HeldBecause;
  readonly requestedAt: number;
  readonly deadline: number;
  /** The last known-good version at the time of the request. */
  readonly toVersion: string;
  /** Evaluations that arrived while waiting, newest last (bounded). */
  readonly evidence: readonly EvidenceEntry[];
}

export interface RollbackPlan {
  readonly rollbackId: string;
  readonly detectionId: string | null;
  readonly fromVersion: string;
  readonly toVersion: string;
  readonly trigger: RollbackTrigger;
  readonly by: string;
  readonly reason: string;
  readonly severity: Severity | null;
  readonly startedAt: number;
}

/** The statistical detector's running test, persisted with the actor (null in threshold mode). */
export interface SprtState {
  readonly kind: 'trinomial' | 'pentanomial';
  readonly results: readonly number[];
  readonly windows: number;
}

export interface ModelContext {
  readonly modelId: string;
  readonly configKey: string;
  readonly productionVersion: string | null;
  readonly baseline: { readonly elo: number | null; readonly winRate: number | null };
  /** Promoted versions, oldest first, bounded. */
  readonly lineage: readonly LineageEntry[];
  /** Consecutive regressions of the production version; a clean evaluation resets it. */
  readonly streak: number;
  readonly lastDetection: Detection | null;
  /** Inside a cooldown: the worst severity already announced (repeats of it or milder stay quiet). */
  readonly announcedSeverity: Severity | null;
  readonly cooldownUntil: number | null;
  readonly pending: PendingApproval | null;
  readonly rollback: RollbackPlan | null;
  readonly lastRollback: (RollbackPlan & { readonly completedAt: number }) | null;
  /** Times of automatic rollbacks, for the per-window cap. */
  readonly autoRollbacks: readonly number[];
  readonly sprt: SprtState | null;
  /** Input event ids already applied (bounded), so a redelivered input changes nothing. */
  readonly recentInputIds: readonly string[];
  /** Monotone counter behind deterministic event, detection and rollback ids. */
  readonly seq: number;
}

export interface WindowOutcomesInput {
  readonly wins?: number | undefined;
  readonly draws?: number | undefined;
  readonly losses?: number | undefined;
  readonly pentanomial?: readonly [number, number, number, number, number] | undefined;
}

export type InputMetadata = Readonly<Record<string, string>>;

export type ModelEvent =
  | {
      type: 'PROMOTED';
      at: number;
      version: string;
      elo?: number | undefined;
      winRate?: number | undefined;
      inputId?: string | undefined;
      /** The input's free-form metadata (run ids, hosts), carried into the events it causes. */
      metadata?: InputMetadata | undefined;
    }
  | {
      type: 'EVALUATED';
      at: number;
      version?: string | undefined;
      metrics: EvaluationMetrics;
      gamesPlayed: number;
      outcomes?: WindowOutcomesInput | undefined;
      inputId?: string | undefined;
      metadata?: InputMetadata | undefined;
    }
  | { type: 'APPROVE'; at: number; by: string; note?: string | undefined }
  | { type: 'REJECT'; at: number; by: string; note?: string | undefined }
  | { type: 'ROLLBACK_REQUESTED'; at: number; by: string; reason: string; toVersion?: string | undefined }
  | { type: 'ROLLBACK_SUCCEEDED'; at: number; rollbackId: string }
  | { type: 'ROLLBACK_FAILED'; at: number; rollbackId: string; error: string }
  | { type: 'PAUSE_ACKNOWLEDGED'; at: number; rollbackId: string }
  | { type: 'COOLDOWN_ELAPSED'; at: number }
  | { type: 'APPROVAL_EXPIRED'; at: number };

export type ModelEventType = ModelEvent['type'];

/** What happened to one input, for the caller (and the metrics); never persisted. */
export type Outcome =
  | { kind: 'promoted'; version: string }
  | { kind: 'healthy' }
  | { kind: 'cleared' }
  | {
      kind: 'regression';
      severity: Severity;
      decision: 'watch' | 'rollback' | 'await_approval';
      detectionId: string;
      announced: boolean;
    }
  | { kind: 'evidence_added'; detectionId: string }
  | { kind: 'insufficient_evidence'; gamesPlayed: number; minGames: number }
  | { kind: 'ignored_version'; version: string; productionVersion: string | null }
  | { kind: 'duplicate'; inputId: string }
  | { kind: 'busy'; state: ModelStateName }
  | { kind: 'rollback_started'; rollbackId: string; toVersion: string }
  | { kind: 'rollback_refused'; error: string }
  | { kind: 'approval_requested'; detectionId: string }
  | { kind: 'rejected' }
  | { kind: 'rolled_back'; rollbackId: string }
  | { kind: 'rollback_failed'; rollbackId: string; error: string }
  | { kind: 'acknowledged' }
  | { kind: 'timer'; name: 'cooldown' | 'approval' }
  | { kind: 'stale'; reason: string };

export type { Statistics };
