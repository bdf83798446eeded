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
  const promotion = parseInput(PromotionInputSchema, input, 'promotion');
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
  const e = parseInput(EvaluationInputSchema, input, 'evaluation');
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
