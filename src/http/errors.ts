import { randomUUID } from 'node:crypto';
import type { ErrorBody, ErrorCode } from '../domain/errors.ts';
import { WardenError } from '../domain/errors.ts';

/** Warden's error codes, plus `not_found` for a path or method the API does not have. */
export type HttpErrorCode = ErrorCode | 'not_found';

export interface HttpErrorBody {
  error: {
    code: HttpErrorCode;
    message: string;
    issues?: string[];
    /** Only on 500s: the `error_id` of the service log line that has the details. */
    error_id?: string;
  };
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

/** The one content type the API reads. */
export const JSON_CONTENT_TYPE = 'application/json';

export function errorBody(code: HttpErrorCode, message: string, issues?: string[]): HttpErrorBody {
  return { error: issues ? { code, message, issues } : { code, message } };
}

export function wardenErrorBody(error: WardenError): HttpErrorBody {
  const body: ErrorBody = error.toJSON();
  return { error: body };
}

/**
 * A 500 says nothing about Warden's insides: a stable code and an error id, the same id as the log line
 * that has the error and its cause.
 */
export function internalErrorBody(errorId: string): HttpErrorBody {
  return {
    error: {
      code: 'internal',
      message: `internal error ${errorId}: Warden could not process this request; the service log has the details under error_id ${errorId}`,
      error_id: errorId,
    },
  };
}

export const newErrorId = (): string => randomUUID();

/** An error fastify raised before our handler ran (bad JSON, wrong content type, body too large). */
export function isClientError(error: unknown): error is Error & { statusCode: number; code?: string } {
  const status = (error as { statusCode?: unknown })?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}

const bytes = (n: number): string =>
  n >= 1024 * 1024 && n % (1024 * 1024) === 0
    ? `${n / (1024 * 1024)} MiB (${n} bytes)`
    : n >= 1024 && n % 1024 === 0
      ? `${n / 1024} KiB (${n} bytes)`
      : `${n} bytes`;

export interface RequestFacts {
  readonly contentType: string | undefined;
  readonly contentLength: string | undefined;
  readonly bodyLimit: number;
  readonly maxParamLength: number;
}

/**
 * What a refusal by fastify itself means, as one of our errors that says what was expected and what was
 * received, with the HTTP status to answer.
 */
export function describeClientError(
  error: Error & { statusCode: number; code?: string },
  facts: RequestFacts,
): { status: number; error: WardenError } {
  const invalid = (message: string) => new WardenError('invalid_input', message);
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        error: invalid(
          `expected Content-Type: ${JSON_CONTENT_TYPE}, received ${facts.contentType === undefined ? 'no Content-Type' : `"${facts.contentType.slice(0, 100)}"`}`,
        ),
      };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        error: invalid(
          `expected a body of at most ${bytes(facts.bodyLimit)}, received ${facts.contentLength === undefined ? 'more' : `${facts.contentLength} bytes`}`,
        ),
      };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return {
        status: 400,
        error: invalid(
          `expected a body of exactly Content-Length bytes, received a Content-Length of ${facts.contentLength ?? 'nothing'} that does not match the body`,
        ),
      };
    case 'FST_ERR_BAD_URL':
      return { status: 400, error: invalid('expected a URL path of valid percent-encoded components') };
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return {
        status: 414,
        error: invalid(
          `expected path parameters of at most ${facts.maxParamLength} characters (ids are 1 to 128), received a longer one`,
        ),
      };
    default:
      return { status: error.statusCode, error: invalid(error.message) };
  }
}
