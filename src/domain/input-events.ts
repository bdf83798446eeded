/**
 * An input payload (promotion or evaluation) read into the model event it becomes: one reading, shared by
 * the live service (src/warden.ts) and the policy lab's replay (src/lab), so that a replay feeds the
 * machines exactly what the service fed them.
 */
import { EvaluationInputSchema, PromotionInputSchema } from './events.ts';
import {
  configKeyFor,
  isToken,
  parseModelRef,
  resolveModelRef,
  type ConfigKeyOverrides,
} from './model-ref.ts';
import { parseInput } from './validation.ts';
import { ValidationError } from './errors.ts';
import type { ModelEvent } from '../machines/model-types.ts';

export type InputKind = 'promotion' | 'evaluation';

/**
 * The payload read last, with its reading (or the error it gave). Several policies read the same payload one
 * after the other: the live service and each of its shadow policies, the live and the candidate policy of a
 * what-if replay. Each of them after the first gets the reading without validating the payload again. Keyed
 * by the payload object itself: every input is a new object (JSON.parse), and none is changed once read.
 */
let lastRead: {
  input: object;
  schema: unknown;
  reading: { ok: true; value: unknown } | { ok: false; error: unknown };
} | null = null;

function readPayload<S extends typeof PromotionInputSchema | typeof EvaluationInputSchema>(
  schema: S,
  input: unknown,
  what: InputKind,
): ReturnType<S['parse']> {
  if (lastRead !== null && lastRead.input === input && lastRead.schema === schema) {
    if (lastRead.reading.ok) return lastRead.reading.value as ReturnType<S['parse']>;
    throw lastRead.reading.error;
  }
  if (typeof input !== 'object' || input === null)
    return parseInput(schema, input, what) as ReturnType<S['parse']>;
  try {
    const value = parseInput(schema, input, what) as ReturnType<S['parse']>;
    lastRead = { input, schema, reading: { ok: true, value } };
    return value;
  } catch (error) {
    lastRead = { input, schema, reading: { ok: false, error } };
    throw error;
  }
}

export function requireToken(value: string, field: string): void {
  if (!isToken(value)) {
    throw new ValidationError(field, [
      `${field}: expected a single token of letters, digits, "_" or "-" (1 to 128), received "${value.slice(0, 140)}"`,
    ]);
  }
}

export interface PromotionEvent {
  readonly modelId: string;
  readonly version: string;
  readonly configKey: string;
  readonly event: Extract<ModelEvent, { type: 'PROMOTED' }>;
}

export interface EvaluationEvent {
  readonly modelId: string;
  readonly event: Extract<ModelEvent, { type: 'EVALUATED' }>;
}

/** A promotion payload at time `at` (ms), or a ValidationError naming what was expected and received. */
export function promotionEvent(
  input: unknown,
  at: number,
  isKnown: (modelId: string) => boolean,
  models: ConfigKeyOverrides,
): PromotionEvent {
  const promotion = readPayload(PromotionInputSchema, input, 'promotion');
  const ref = resolveModelRef(promotion.model_id, promotion.version, isKnown);
  requireToken(ref.modelId, 'model_id');
  if (ref.version === undefined) {
    const known = isKnown(ref.modelId) && parseModelRef(ref.modelId).version !== undefined;
    throw new ValidationError('promotion', [
      `version: expected a version, as "version" or as a "_v<N>" suffix of model_id, received model_id "${promotion.model_id}" and no version` +
        (known ? ` ("${ref.modelId}" is a known model, so its suffix is part of its id, not a version)` : ''),
    ]);
  }
  return {
    modelId: ref.modelId,
    version: ref.version,
    configKey: configKeyFor(ref.modelId, models, promotion.config_key),
    event: {
      type: 'PROMOTED',
      at,
      version: ref.version,
      elo: promotion.elo,
      winRate: promotion.win_rate,
      inputId: promotion.event_id,
      metadata: promotion.metadata,
    },
  };
}

/** An evaluation payload at time `at` (ms); whether its model exists is for the caller to decide. */
export function evaluationEvent(
  input: unknown,
  at: number,
  isKnown: (modelId: string) => boolean,
): EvaluationEvent {
  const e = readPayload(EvaluationInputSchema, input, 'evaluation');
  const ref = resolveModelRef(e.model_id, e.version, isKnown);
  requireToken(ref.modelId, 'model_id');
  const hasOutcomes = e.wins !== undefined || e.pentanomial !== undefined;
  return {
    modelId: ref.modelId,
    event: {
      type: 'EVALUATED',
      at,
      version: ref.version,
      metrics: {
        currentElo: e.current_elo,
        baselineElo: e.baseline_elo,
        currentWinRate: e.current_win_rate,
        baselineWinRate: e.baseline_win_rate,
        errorRate: e.error_rate,
      },
      gamesPlayed: e.games_played,
      outcomes: hasOutcomes
        ? { wins: e.wins, draws: e.draws, losses: e.losses, pentanomial: e.pentanomial }
        : undefined,
      inputId: e.event_id,
      metadata: e.metadata,
    },
  };
}
