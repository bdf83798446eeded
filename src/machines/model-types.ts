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

/**
 * The statistical detector's running test of the production version, persisted with the actor (null in
 * threshold mode and before the first window). The fields after `windows` are absent in states persisted
 * before alpha spending; the detector reads those as the first test.
 */
export interface SprtState {
  readonly kind: 'trinomial' | 'pentanomial';
  readonly results: readonly number[];
  readonly windows: number;
  /** The running test's number, from 1: each test of a version spends its share of alpha. */
  readonly test?: number;
  /** Tests this version passed (accept_h0), and when it last did (epoch ms). */
  readonly passes?: number;
  readonly lastPassedAt?: number | null;
  /** The running test's LLR and its Wald bounds. */
  readonly llr?: number;
  readonly lower?: number;
  readonly upper?: number;
  /** The running test's alpha, and the alpha this version's completed tests spent. */
  readonly alpha?: number;
  readonly alphaSpent?: number;
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
  /**
   * Inputs that arrived while a rollback was in flight, oldest first: kept with the state and applied, in
   * order, once the rollback ends (the runtime hands them back one by one). Absent in snapshots written
   * before deferral existed: read it with `deferredOf`.
   */
  readonly deferred?: readonly DeferredInput[];
  /**
   * Input event ids already applied (bounded), so a redelivered input changes nothing; long ones as their
   * digest (see rememberedId).
   */
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

/** An input kept while the model was rolling back; `id` tells the runtime's hand-back which one it is. */
export type DeferredInput = {
  readonly id: number;
  readonly event: Extract<ModelEvent, { type: 'PROMOTED' | 'EVALUATED' }>;
};

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
      /** Set by the runtime when it hands back a deferred input (the id of the entry it takes). */
      deferredId?: number | undefined;
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
      /** Set by the runtime when it hands back a deferred input (the id of the entry it takes). */
      deferredId?: number | undefined;
    }
  | { type: 'APPROVE'; at: number; by: string; note?: string | undefined }
  | { type: 'REJECT'; at: number; by: string; note?: string | undefined }
  | { type: 'ROLLBACK_REQUESTED'; at: number; by: string; reason: string; toVersion?: string | undefined }
  | { type: 'ROLLBACK_SUCCEEDED'; at: number; rollbackId: string }
  | { type: 'ROLLBACK_FAILED'; at: number; rollbackId: string; error: string }
  | { type: 'PAUSE_ACKNOWLEDGED'; at: number; rollbackId: string }
  /** Timer events carry the deadline they were armed for; the runtime never sends one before it. */
  | { type: 'COOLDOWN_ELAPSED'; at: number; deadline?: number | undefined }
  | { type: 'APPROVAL_EXPIRED'; at: number; deadline?: number | undefined };

export type ModelEventType = ModelEvent['type'];

/** What happened to one input, for the caller (and the metrics); never persisted. */
export type Outcome =
  | { kind: 'promoted'; version: string }
  /** `passedTest`: this evaluation completed the version's statistical test number N with accept_h0. */
  | { kind: 'healthy'; passedTest?: number }
  | { kind: 'cleared'; passedTest?: number }
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
  | { kind: 'deferred'; state: ModelStateName; waiting: number }
  | { kind: 'busy'; state: ModelStateName; waiting: number }
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
