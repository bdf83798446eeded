import { z } from 'zod';
import { TOKEN_PATTERN } from './model-ref.ts';
import { SEVERITIES } from '../policy/severity.ts';

/**
 * Every payload that crosses Warden's edge, defined once. Field names are the seed's, snake_case, so that
 * pipelines that called `check_regression(model_id, current_elo, ...)` publish what they already have.
 */

const MAX_ELO = 100_000;
const MAX_GAMES = 1_000_000_000;
const elo = z.number().finite().gte(-MAX_ELO).lte(MAX_ELO);
const rate = z.number().finite().min(0).max(1);
const count = z.number().int().nonnegative().lte(MAX_GAMES);
const token = z
  .string()
  .regex(TOKEN_PATTERN, 'expected a single token of letters, digits, "_" or "-" (1 to 128)');
const version = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.-]+$/, 'expected a version of letters, digits, ".", "_" or "-"');
const eventId = z.string().min(1).max(200);
/** Epoch seconds (the seed's convention) or an ISO 8601 string; every refusal names both forms. */
const TIMESTAMP_FORMS =
  'expected epoch seconds (a number > 0, fractions allowed: 1767225600.25) or an ISO 8601 date-time with an offset (2026-01-01T00:00:00Z)';
const timestamp = z.union(
  [
    z
      .number({ error: TIMESTAMP_FORMS })
      .finite({ error: TIMESTAMP_FORMS })
      .positive({ error: TIMESTAMP_FORMS }),
    z.iso.datetime({ offset: true, error: TIMESTAMP_FORMS }),
  ],
  { error: TIMESTAMP_FORMS },
);

/**
 * Free-form string fields a producer attaches to an input (run id, host, commit), carried into the events
 * it causes. Bounded: at most 16 fields, names of 1 to 64 letters, digits, ".", "_" or "-", values of at
 * most 512 characters.
 */
export const METADATA_LIMITS = { fields: 16, nameLength: 64, valueLength: 512 } as const;
export const InputMetadataSchema = z
  .record(
    z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected a field name of 1 to 64 letters, digits, ".", "_" or "-"'),
    z.string().max(METADATA_LIMITS.valueLength, 'expected a string of at most 512 characters'),
  )
  .refine((m) => Object.keys(m).length <= METADATA_LIMITS.fields, {
    message: 'expected at most 16 fields',
  })
  .meta({ maxProperties: METADATA_LIMITS.fields });

/** A model reference: "hex8_2p" or, with the version folded in, "hex8_2p_v42". */
const modelRef = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,160}$/, 'expected a model id such as "hex8_2p" or "hex8_2p_v42"');

export const PromotionInputSchema = z
  .object({
    event_id: eventId.optional(),
    model_id: modelRef,
    version: version.optional(),
    elo: elo.optional(),
    win_rate: rate.optional(),
    config_key: token.optional(),
    reason: z.string().max(500).optional(),
    timestamp: timestamp.optional(),
    metadata: InputMetadataSchema.optional(),
  })
  .strict();
export type PromotionInput = z.output<typeof PromotionInputSchema>;

export const PentanomialSchema = z.tuple([count, count, count, count, count]);

export const EvaluationInputSchema = z
  .object({
    event_id: eventId.optional(),
    model_id: modelRef,
    version: version.optional(),
    current_elo: elo.optional(),
    baseline_elo: elo.optional(),
    current_win_rate: rate.optional(),
    baseline_win_rate: rate.optional(),
    error_rate: rate.optional(),
    games_played: count,
    wins: count.optional(),
    draws: count.optional(),
    losses: count.optional(),
    /** Game-pair outcomes against the baseline: [LL, LD+DL, LW+DD+WL, DW+WD, WW]. */
    pentanomial: PentanomialSchema.optional(),
    config_key: token.optional(),
    timestamp: timestamp.optional(),
    metadata: InputMetadataSchema.optional(),
  })
  .strict()
  .superRefine((e, ctx) => {
    const outcomes = [e.wins, e.draws, e.losses];
    const given = outcomes.filter((v) => v !== undefined).length;
    if (given > 0 && given < 3) {
      ctx.addIssue({
        code: 'custom',
        path: ['wins'],
        message: 'expected wins, draws and losses together, received only some of them',
      });
    } else if (given === 3) {
      const sum = e.wins! + e.draws! + e.losses!;
      if (sum !== e.games_played) {
        ctx.addIssue({
          code: 'custom',
          path: ['games_played'],
          message: `expected wins + draws + losses (${sum}) to equal games_played, received ${e.games_played}`,
        });
      }
    }
    if (e.pentanomial) {
      const pairs = e.pentanomial.reduce((a, b) => a + b, 0);
      if (pairs * 2 !== e.games_played) {
        ctx.addIssue({
          code: 'custom',
          path: ['pentanomial'],
          message: `expected 2 x the pair count (${pairs * 2}) to equal games_played, received ${e.games_played}`,
        });
      }
      if (given === 3) {
        ctx.addIssue({
          code: 'custom',
          path: ['pentanomial'],
          message: 'expected either wins/draws/losses or pentanomial, received both',
        });
      }
    }
  });
export type EvaluationInput = z.output<typeof EvaluationInputSchema>;

/** Operator commands. `by` is who asks; it goes into the audit log. */
export const ApproveCommandSchema = z
  .object({ by: z.string().min(1).max(200), note: z.string().max(1000).optional() })
  .strict();
export const RollbackCommandSchema = z
  .object({
    by: z.string().min(1).max(200),
    reason: z.string().min(1).max(1000),
    to_version: version.optional(),
  })
  .strict();
export const PauseCommandSchema = z
  .object({ by: z.string().min(1).max(200), reason: z.string().min(1).max(1000) })
  .strict();
export const ResumeCommandSchema = z
  .object({ by: z.string().min(1).max(200), note: z.string().max(1000).optional() })
  .strict();

// ---------------------------------------------------------------------------------------------------
// Output events

const severity = z.enum(SEVERITIES);
const common = {
  event_id: z.string(),
  /** Epoch seconds, as the seed's detector used. */
  timestamp: z.number(),
  /** The metadata of the input that caused the event, when it had some. */
  metadata: z.record(z.string(), z.string()).optional(),
};

/** Evidence from the statistical detector, when it decided (null in threshold mode). */
export const StatisticsSchema = z
  .object({
    mode: z.enum(['threshold', 'statistical']),
    elo: z.number().nullable(),
    elo_lower: z.number().nullable(),
    elo_upper: z.number().nullable(),
    confidence: z.number().nullable(),
    llr: z.number().nullable(),
    llr_lower: z.number().nullable(),
    llr_upper: z.number().nullable(),
    sprt_decision: z.enum(['accept_h0', 'accept_h1', 'continue']).nullable(),
    games: z.number().nullable(),
    /** The SPRT's hypotheses (logistic Elo), the input format and which test of this version it is. */
    elo0: z.number().nullable(),
    elo1: z.number().nullable(),
    format: z.enum(['trinomial', 'pentanomial']).nullable(),
    test_number: z.number().int().nullable(),
  })
  .nullable();

export const RegressionDetectedSchema = z.object({
  ...common,
  detection_id: z.string(),
  model_id: z.string(),
  version: z.string(),
  config_key: z.string(),
  severity,
  current_elo: z.number().nullable(),
  baseline_elo: z.number().nullable(),
  elo_drop: z.number().nullable(),
  current_win_rate: z.number().nullable(),
  baseline_win_rate: z.number().nullable(),
  win_rate_drop: z.number().nullable(),
  error_rate: z.number().nullable(),
  games_played: z.number(),
  consecutive_count: z.number(),
  reason: z.string(),
  recommended_action: z.string(),
  /** What Warden does about it: watch, rollback or await_approval (and why it was held, if it was). */
  decision: z.enum(['watch', 'rollback', 'await_approval']),
  statistics: StatisticsSchema,
});

export const RegressionClearedSchema = z.object({
  ...common,
  model_id: z.string(),
  version: z.string(),
  config_key: z.string(),
  /** How far Elo came back since the last detection (current - detected); null without Elo. */
  elo_recovered: z.number().nullable(),
  current_elo: z.number().nullable(),
  baseline_elo: z.number().nullable(),
  metric_name: z.literal('elo'),
  reason: z.literal('consecutive_regressions_cleared'),
});

export const TRIGGERS = [
  'auto_regression_critical',
  'auto_regression_severe',
  'auto_regression_moderate',
  'auto_regression_forced',
  'auto_regression_sprt',
  'auto_regression_approved',
  'approval_expired',
  'manual',
] as const;
export type RollbackTrigger = (typeof TRIGGERS)[number];

const metrics = z.object({ elo: z.number().nullable(), win_rate: z.number().nullable() });

export const PromotionRolledBackSchema = z.object({
  ...common,
  rollback_id: z.string(),
  detection_id: z.string().nullable(),
  model_id: z.string(),
  config_key: z.string(),
  from_version: z.string(),
  to_version: z.string(),
  from_metrics: metrics,
  to_metrics: metrics,
  reason: z.string(),
  triggered_by: z.enum(TRIGGERS),
  by: z.string(),
  action_required: z.literal('pause_training'),
});

export const RollbackFailedSchema = z.object({
  ...common,
  rollback_id: z.string().nullable(),
  detection_id: z.string().nullable(),
  model_id: z.string(),
  config_key: z.string(),
  from_version: z.string().nullable(),
  to_version: z.string().nullable(),
  triggered_by: z.enum(TRIGGERS),
  by: z.string(),
  reason: z.string(),
  error: z.string(),
});

export const RollbackApprovalRequestedSchema = z.object({
  ...common,
  detection_id: z.string(),
  model_id: z.string(),
  version: z.string(),
  config_key: z.string(),
  severity,
  reason: z.string(),
  /** Why a human is asked: the approval policy, a second rollback inside the cooldown, or the daily cap. */
  held_because: z.enum(['approval_required', 'cooldown', 'rate_limit']),
  deadline: z.number(),
  on_timeout: z.enum(['rollback', 'reject']),
  to_version: z.string().nullable(),
});

export const TrainingPausedSchema = z.object({
  ...common,
  config_key: z.string(),
  reason: z.string(),
  by: z.string(),
  model_id: z.string().nullable(),
  rollback_id: z.string().nullable(),
  from_version: z.string().nullable(),
  to_version: z.string().nullable(),
});

export const TrainingResumedSchema = z.object({
  ...common,
  config_key: z.string(),
  reason: z.string(),
  by: z.string(),
  paused_seconds: z.number(),
});

export const ALERT_KINDS = [
  'critical_regression',
  'rollback_failed',
  'approval_expired',
  'rate_limited',
  'pause_unacknowledged',
  // Published by the NATS intake (the nats branch) when it gives up on an input.
  'input_dead_lettered',
  'approval_requested',
  'rolled_back',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** What an alert's receiver needs to act without asking Warden first (the evidence, the deadline). */
export const AlertDetailsSchema = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean(), z.null()]),
);
export type AlertDetails = z.output<typeof AlertDetailsSchema>;

export const AlertSchema = z.object({
  ...common,
  model_id: z.string(),
  config_key: z.string(),
  level: z.enum(['critical', 'warning']),
  kind: z.enum(ALERT_KINDS),
  message: z.string(),
  details: AlertDetailsSchema.optional(),
});

/** Internal: a training-config actor tells the model actor its rollback's pause is in place. */
export const PauseAcknowledgedSchema = z.object({
  ...common,
  rollback_id: z.string(),
  model_id: z.string(),
  config_key: z.string(),
});

/**
 * Every output event: its seed type name, the subject token (warden.evt.<kind>.<key>) and its schema.
 * `keyField` names the payload field that becomes the last subject token.
 */
export const OUTPUT_EVENTS = {
  REGRESSION_DETECTED: {
    kind: 'regression_detected',
    keyField: 'model_id',
    schema: RegressionDetectedSchema,
  },
  REGRESSION_MINOR: { kind: 'regression_minor', keyField: 'model_id', schema: RegressionDetectedSchema },
  REGRESSION_MODERATE: {
    kind: 'regression_moderate',
    keyField: 'model_id',
    schema: RegressionDetectedSchema,
  },
  REGRESSION_SEVERE: { kind: 'regression_severe', keyField: 'model_id', schema: RegressionDetectedSchema },
  REGRESSION_CRITICAL: {
    kind: 'regression_critical',
    keyField: 'model_id',
    schema: RegressionDetectedSchema,
  },
  REGRESSION_CLEARED: { kind: 'regression_cleared', keyField: 'model_id', schema: RegressionClearedSchema },
  ROLLBACK_APPROVAL_REQUESTED: {
    kind: 'rollback_approval_requested',
    keyField: 'model_id',
    schema: RollbackApprovalRequestedSchema,
  },
  PROMOTION_ROLLED_BACK: {
    kind: 'promotion_rolled_back',
    keyField: 'model_id',
    schema: PromotionRolledBackSchema,
  },
  ROLLBACK_FAILED: { kind: 'rollback_failed', keyField: 'model_id', schema: RollbackFailedSchema },
  TRAINING_PAUSED: { kind: 'training_paused', keyField: 'config_key', schema: TrainingPausedSchema },
  TRAINING_RESUMED: { kind: 'training_resumed', keyField: 'config_key', schema: TrainingResumedSchema },
  ALERT: { kind: 'alert', keyField: 'model_id', schema: AlertSchema },
  PAUSE_ACKNOWLEDGED: { kind: 'pause_acknowledged', keyField: 'model_id', schema: PauseAcknowledgedSchema },
} as const;

export type OutputEventType = keyof typeof OUTPUT_EVENTS;
export type OutputPayload<T extends OutputEventType> = z.output<(typeof OUTPUT_EVENTS)[T]['schema']>;
export type OutputEvent = { [T in OutputEventType]: { type: T; payload: OutputPayload<T> } }[OutputEventType];

export type RegressionDetected = z.output<typeof RegressionDetectedSchema>;
export type PromotionRolledBack = z.output<typeof PromotionRolledBackSchema>;
export type TrainingPaused = z.output<typeof TrainingPausedSchema>;
export type Statistics = z.output<typeof StatisticsSchema>;

/** The subject an output event is published on; internal events go under `<prefix>.int`. */
export function subjectFor(prefix: string, event: OutputEvent): string {
  const spec = OUTPUT_EVENTS[event.type];
  const key = (event.payload as Record<string, unknown>)[spec.keyField] as string;
  const area = event.type === 'PAUSE_ACKNOWLEDGED' ? 'int' : 'evt';
  return `${prefix}.${area}.${spec.kind}.${key}`;
}
