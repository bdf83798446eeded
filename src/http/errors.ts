import type { ErrorBody, ErrorCode } from '../domain/errors.ts';
import { WardenError } from '../domain/errors.ts';

/** Warden's error codes, plus `not_found` for a path or method the API does not have. */
export type HttpErrorCode = ErrorCode | 'not_found';

export interface HttpErrorBody {
  error: { code: HttpErrorCode; message: string; issues?: string[] };
}

/** Transports map codes, never messages, to their replies; this is the HTTP one. */
export const STATUS_BY_CODE: Readonly<Record<HttpErrorCode, number>> = {
  invalid_input: 400,
  invalid_config: 500,
  unauthorized: 401,
  forbidden: 403,
  unknown_model: 404,
  unknown_version: 404,
  not_found: 404,
  no_pending_approval: 409,
  conflict: 409,
  unavailable: 503,
  internal: 500,
};

export function errorBody(code: HttpErrorCode, message: string, issues?: string[]): HttpErrorBody {
  return { error: issues ? { code, message, issues } : { code, message } };
}

export function wardenErrorBody(error: WardenError): HttpErrorBody {
  const body: ErrorBody = error.toJSON();
  return { error: body };
}

/** An error fastify raised before our handler ran (bad JSON, wrong content type, body too large). */
export function isClientError(error: unknown): error is Error & { statusCode: number } {
  const status = (error as { statusCode?: unknown })?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}
