/**
 * The error catalogue. Every error Warden returns to a caller has a stable code, a message that says what
 * was expected and what was received, and, for validation, the individual issues. Transports map codes,
 * not messages, to their replies (HTTP status, NATS reply, JetStream ack/term).
 */
export type ErrorCode =
  | 'invalid_input'
  | 'invalid_config'
  | 'unknown_model'
  | 'unknown_version'
  | 'no_pending_approval'
  | 'conflict'
  | 'unauthorized'
  | 'forbidden'
  | 'unavailable'
  | 'internal';

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  issues?: string[];
}

export class WardenError extends Error {
  readonly code: ErrorCode;
  readonly issues: string[] | undefined;
  /** Retrying the same request may succeed (transports nak these instead of terminating). */
  readonly retryable: boolean;
  /**
   * For internal errors: the id of the log line that has the details, when one was already written
   * (transports answer with it instead of inventing another).
   */
  readonly errorId: string | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { issues?: string[]; cause?: unknown; retryable?: boolean; errorId?: string } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.issues = options.issues;
    this.retryable = options.retryable ?? false;
    this.errorId = options.errorId;
  }

  toJSON(): ErrorBody {
    return this.issues
      ? { code: this.code, message: this.message, issues: this.issues }
      : { code: this.code, message: this.message };
  }
}

export class ValidationError extends WardenError {
  constructor(what: string, issues: string[]) {
    super('invalid_input', `invalid ${what}: ${issues.join('; ')}`, { issues });
  }
}

export class ConfigError extends WardenError {
  constructor(source: string, issues: string[]) {
    super('invalid_config', `invalid configuration in ${source}:\n  - ${issues.join('\n  - ')}`, { issues });
  }
}

export class UnknownModelError extends WardenError {
  constructor(modelId: string) {
    super(
      'unknown_model',
      `unknown model "${modelId}": no promotion has been recorded for it (publish a promotion first)`,
    );
  }
}

export class NoPendingApprovalError extends WardenError {
  constructor(modelId: string, state: string) {
    super('no_pending_approval', `model "${modelId}" has no pending approval (it is ${state})`);
  }
}

export class ConflictError extends WardenError {
  constructor(message: string) {
    super('conflict', message);
  }
}

/** Anything thrown that is not ours becomes an internal error, keeping the cause. */
export function toWardenError(error: unknown): WardenError {
  if (error instanceof WardenError) return error;
  return new WardenError('internal', error instanceof Error ? error.message : String(error), {
    cause: error,
  });
}
