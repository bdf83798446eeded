import { z } from 'zod';
import { ALERT_KINDS } from '../domain/events.ts';
import { lookupTable } from '../domain/model-ref.ts';

const nonNegative = z.number().finite().nonnegative();
const positiveInt = z.number().int().positive();
const fraction = z.number().finite().min(0).max(1);
const token = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,128}$/, 'expected a single token of letters, digits, "_" or "-" (at most 128)');

/**
 * A bearer token: sent as `Authorization: Bearer <token>`, so it must be one run of printable ASCII;
 * a token with a space inside could never authenticate.
 */
const bearerToken = z
  .string()
  .min(16, 'expected a token of at least 16 characters')
  .regex(
    /^[\x21-\x7e]*$/,
    'expected a token of printable ASCII without spaces or control characters (it travels in an HTTP header)',
  );

/** `nats://host:port` or `tls://host:port` (or `host:port`), several separated by commas. */
function isNatsServerList(value: string): boolean {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  return (
    entries.length > 0 &&
    entries.every((entry) => {
      try {
        const url = new URL(entry.includes('://') ? entry : `nats://${entry}`);
        return (url.protocol === 'nats:' || url.protocol === 'tls:') && url.hostname !== '';
      } catch {
        return false;
      }
    })
  );
}

function ascendingLadder(value: z.ZodNumber) {
  return z
    .object({ minor: value, moderate: value, severe: value, critical: value })
    .strict()
    .refine((l) => l.minor < l.moderate && l.moderate < l.severe && l.severe < l.critical, {
      message: 'expected minor < moderate < severe < critical, so that every severity is reachable',
    });
}

export const StatisticalSchema = z
  .object({
    /** Simultaneous confidence of the severity's lower bound over the looks of one SPRT run. */
    confidence: z.number().gt(0).lt(1).default(0.95),
    /** H0 and H1 of the SPRT, in logistic Elo of the production version against its baseline. */
    elo0: z.number().min(-1000).max(1000).default(0),
    elo1: z.number().min(-1000).max(1000).default(-30),
    /** The false-rollback budget of a healthy version: over its whole life (`life`) or per test. */
    alpha: z.number().gt(0).lt(0.5).default(0.05),
    beta: z.number().gt(0).lt(0.5).default(0.05),
    /**
     * `life`: the tests of one version share alpha (test j gets alpha/(ζ(3)·j³)), so a healthy version is
     * rolled back with probability about alpha over its life. `per_test`: every test after an accept_h0
     * spends alpha again, as before; over hundreds of checks a healthy version is then rolled back sooner
     * or later (docs/detection.md).
     */
    alphaSpending: z.enum(['life', 'per_test']).default('life'),
  })
  .strict()
  .refine((s) => s.elo1 < s.elo0, { message: 'expected elo1 < elo0: H1 is a regression', path: ['elo1'] });

export const DETECTION_MODES = ['threshold', 'statistical'] as const;

export const DetectionSchema = z
  .object({
    /**
     * Which detector decides. `statistical` (the default) uses the game outcomes an evaluation carries
     * (wins/draws/losses or pentanomial pairs) for a confidence bound and an SPRT; an evaluation without
     * outcomes falls back to the threshold rule, which is the only rule in `threshold` mode.
     */
    mode: z.enum(DETECTION_MODES).default('statistical'),
    statistical: StatisticalSchema.default(StatisticalSchema.parse({})),
    minGames: positiveInt.default(50),
    eloDrop: ascendingLadder(nonNegative).default({ minor: 20, moderate: 35, severe: 50, critical: 75 }),
    winRateDrop: ascendingLadder(fraction).default({
      minor: 0.025,
      moderate: 0.05,
      severe: 0.1,
      critical: 0.15,
    }),
    errorRateSevere: fraction.default(0.05),
    escalateAt: positiveInt.default(2),
    forceActionAt: positiveInt.default(3),
    moderateRollbackEloDrop: nonNegative.default(30),
  })
  .strict()
  .refine((d) => d.escalateAt <= d.forceActionAt, {
    message: 'expected escalateAt <= forceActionAt',
    path: ['forceActionAt'],
  });

export const ConfigSchema = z
  .object({
    detection: DetectionSchema.default(DetectionSchema.parse({})),
    approval: z
      .object({
        requireForSevere: z.boolean().default(false),
        timeoutSeconds: z.number().positive().default(3600),
        /** What happens when nobody answers in time. */
        onTimeout: z.enum(['rollback', 'reject']).default('rollback'),
      })
      .strict()
      .default({ requireForSevere: false, timeoutSeconds: 3600, onTimeout: 'rollback' }),
    cooldownSeconds: nonNegative.default(300),
    /**
     * How long an orderly shutdown (SIGINT/SIGTERM) may take before the process exits with code 1. The
     * default stays under Docker's 10 s stop timeout, so the log says why rather than a SIGKILL.
     */
    shutdownTimeoutSeconds: z.number().positive().max(3600).default(8),
    /**
     * An actor (model or training config) idle this long is passivated: its state stays in the store and
     * nothing of it in memory; its next input, command, status query or timer brings it back. An actor
     * with work in flight (a rollback, inputs kept for afterwards) stays. null: every actor stays resident.
     */
    passivateAfterSeconds: z.number().positive().nullable().default(300),
    /** At most this many automatic rollbacks per model per window; beyond it a human decides. */
    autoRollbackLimit: z
      .object({ max: positiveInt.default(3), windowSeconds: z.number().positive().default(86_400) })
      .strict()
      .default({ max: 3, windowSeconds: 86_400 }),
    training: z
      .object({
        /** Resume a paused config by itself after this many seconds; null: only an operator resumes. */
        autoResumeSeconds: z.number().positive().nullable().default(null),
      })
      .strict()
      .default({ autoResumeSeconds: null }),
    /** Per-model overrides; the config key defaults to the model id. */
    models: z
      .record(
        token,
        z.object({ configKey: token.optional(), detectionMode: z.enum(DETECTION_MODES).optional() }).strict(),
      )
      .default({})
      // Looked up by producers' model ids: "constructor" or "toString" must find nothing inherited.
      .transform(lookupTable),
    dataDir: z.string().min(1).default('./data'),
    /**
     * Embedded mode: what an acknowledged input survives. `process`: a crash of the process (SQLite WAL
     * with synchronous=NORMAL); `power`: also a power loss or an OS crash (synchronous=FULL: every commit
     * waits for the disk, so slower).
     */
    durability: z.enum(['process', 'power']).default('process'),
    nats: z
      .object({
        url: z
          .string()
          .refine(isNatsServerList, {
            message: 'expected nats://host:port or tls://host:port (several separated by commas)',
          })
          .optional(),
        prefix: token.default('warden'),
        /**
         * Input partitions shared out between instances (each model's inputs on one instance at a time).
         * Above 1, nats-server must map `<prefix>.in.*.*` to `<prefix>.part.{{partition(N,2)}}.*.*` with the
         * same N (docs/deployment.md); 1 takes every input on one instance, with no mapping needed.
         */
        partitions: z.number().int().min(1).max(1024).default(1),
        credsFile: z.string().min(1).optional(),
        user: z.string().optional(),
        pass: z.string().optional(),
        token: z.string().optional(),
      })
      .strict()
      .refine((n) => (n.user === undefined) === (n.pass === undefined), {
        message: 'expected nats.user and nats.pass together: one without the other can never authenticate',
        path: ['pass'],
      })
      .default({ prefix: 'warden', partitions: 1 }),
    http: z
      .object({
        port: z.number().int().min(0).max(65_535).default(8080),
        /** Loopback by default: with no tokens configured, only loopback may change anything. */
        host: z.string().min(1).default('127.0.0.1'),
        operatorTokens: z.array(bearerToken).default([]),
        producerTokens: z.array(bearerToken).default([]),
        /** Read-only tokens (the dashboard's viewers); once any is set, every read needs a token. */
        viewerTokens: z.array(bearerToken).default([]),
      })
      .strict()
      .refine((h) => !h.producerTokens.some((t) => h.operatorTokens.includes(t)), {
        message: 'expected a token in one list only: a token that is both operator and producer is ambiguous',
        path: ['producerTokens'],
      })
      .refine(
        (h) => !h.viewerTokens.some((t) => h.operatorTokens.includes(t) || h.producerTokens.includes(t)),
        {
          message:
            'expected a token in one list only: a viewer token that is also an operator or producer token is ambiguous',
          path: ['viewerTokens'],
        },
      )
      .default({ port: 8080, host: '127.0.0.1', operatorTokens: [], producerTokens: [], viewerTokens: [] }),
    alerts: z
      .object({
        /** Slack-compatible incoming webhook for every level; alerts always go to <prefix>.evt.alert.* as well. */
        webhookUrl: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
        /** More webhooks, each for the levels (and optionally the kinds) it takes: routing by severity. */
        routes: z
          .array(
            z
              .object({
                url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
                /** `slack`: Slack's text and blocks (with the alert as `warden_alert`); `json`: the alert itself. */
                format: z.enum(['slack', 'json']).default('json'),
                levels: z
                  .array(z.enum(['critical', 'warning']))
                  .min(1)
                  .default(['critical', 'warning']),
                kinds: z.array(z.enum(ALERT_KINDS)).min(1).optional(),
              })
              .strict(),
          )
          .default([]),
        maxAttempts: positiveInt.default(5),
        initialBackoffMs: positiveInt.default(500),
        maxBackoffMs: positiveInt.default(60_000),
        attemptTimeoutMs: positiveInt.default(10_000),
      })
      .strict()
      .default({
        routes: [],
        maxAttempts: 5,
        initialBackoffMs: 500,
        maxBackoffMs: 60_000,
        attemptTimeoutMs: 10_000,
      }),
    metrics: z
      .object({
        /**
         * At most this many per-model `warden_last_evaluation_timestamp_seconds` series (the stalest models);
         * 0 keeps only the oldest time. Bounds the cardinality with very many models.
         */
        maxModelSeries: z.number().int().min(0).max(1_000_000).default(1000),
      })
      .strict()
      .default({ maxModelSeries: 1000 }),
    /**
     * Embedded mode: every accepted input is kept in the input journal (table `input_journal` in the
     * SQLite file) for `warden replay`; NATS mode keeps the WARDEN_IN stream instead.
     */
    journal: z
      .object({
        enabled: z.boolean().default(true),
        /** Entries older than this are pruned; null keeps them by age. */
        retentionDays: z.number().positive().nullable().default(30),
        /** At most this many entries are kept, the newest. */
        maxEntries: positiveInt.default(1_000_000),
      })
      .strict()
      .default({ enabled: true, retentionDays: 30, maxEntries: 1_000_000 }),
    /**
     * Candidate policies that run beside the live one on every input and take no action: each publishes
     * what it would have done on `<prefix>.evt.shadow.<name>.<model_id>` and in the metrics. `overrides`
     * is a part of this configuration (detection, approval, cooldownSeconds, autoRollbackLimit, training,
     * models) laid over the live one; `file` names a configuration file laid over it the same way.
     */
    shadowPolicies: z
      .array(
        z
          .object({
            name: token,
            overrides: z.record(z.string(), z.unknown()).optional(),
            file: z.string().min(1).optional(),
          })
          .strict()
          .refine((s) => (s.overrides === undefined) !== (s.file === undefined), {
            message: 'expected either overrides or file',
          }),
      )
      .max(8)
      .refine((list) => new Set(list.map((s) => s.name)).size === list.length, {
        message: 'expected every shadow policy to have its own name',
      })
      .default([]),
    /** Attach the Stately inspector to every actor. */
    inspect: z.boolean().default(false),
    /** Where the inspector's relay listens; loopback unless set (0.0.0.0 in a container). */
    inspectHost: z.string().min(1).default('127.0.0.1'),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        pretty: z.boolean().optional(),
      })
      .strict()
      .default({ level: 'info' }),
  })
  .strict();

export type ConfigInput = z.input<typeof ConfigSchema>;
export type Config = z.output<typeof ConfigSchema>;
export type DetectionConfig = Config['detection'];
