import { z } from 'zod';
import {
  ApproveCommandSchema,
  PauseCommandSchema,
  ResumeCommandSchema,
  RollbackCommandSchema,
} from '../domain/events.ts';
import { TOKEN_PATTERN } from '../domain/model-ref.ts';
import { parseInput } from '../domain/validation.ts';

/**
 * What the HTTP edge checks itself: path parameters, the query string and the operator command bodies.
 * Evaluation and promotion bodies are the NATS payloads and Warden validates them.
 */

const token = z
  .string()
  .regex(TOKEN_PATTERN, 'expected a single token of letters, digits, "_" or "-" (1 to 128)');

export const ModelParamsSchema = z.object({ model_id: token }).strict();
export const ConfigParamsSchema = z.object({ config_key: token }).strict();

export const HistoryQuerySchema = z
  .object({
    model_id: token.optional(),
    limit: z
      .string()
      .regex(/^\d{1,4}$/, 'expected an integer from 1 to 1000')
      .transform(Number)
      .refine((n) => n >= 1 && n <= 1000, 'expected an integer from 1 to 1000')
      .optional(),
  })
  .strict();

/** `by` is optional over HTTP (the token names the caller) and shorter, to leave room for the identity. */
const by = z.string().min(1).max(160).optional();

export const HttpApproveSchema = ApproveCommandSchema.extend({ by });
export const HttpRollbackSchema = RollbackCommandSchema.extend({ by });
export const HttpPauseSchema = PauseCommandSchema.extend({ by });
export const HttpResumeSchema = ResumeCommandSchema.extend({ by });

/** A command body: absent means `{}`; anything else must be a JSON object of the schema's fields. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, what: string): z.output<S> {
  return parseInput(schema, body === undefined ? {} : body, what);
}

export { parseInput };
