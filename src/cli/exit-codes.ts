import type { HttpErrorCode } from '../http/errors.ts';

/**
 * The operator commands' exit codes, one per thing a script would do differently. Commander's own usage
 * errors (unknown option, missing argument) exit 2 as well, through main().
 */
export const EXIT = {
  ok: 0,
  /** The request failed on the server's side (internal error) or the reply made no sense. */
  failed: 1,
  /** Bad usage or input Warden refused as invalid. */
  usage: 2,
  /** Unknown model or version. */
  notFound: 3,
  /** Not possible in the current state: no pending approval, not paused, already rolling back. */
  conflict: 4,
  /** Warden could not be reached, or is not ready (503). */
  unreachable: 5,
  /** The token was missing, wrong, or not allowed to do this. */
  refused: 6,
  /**
   * `warden replay`: the candidate configuration's rollbacks differ from the live configuration's in the
   * way `--fail-on` names (any, added, removed); the report says how. Gates a configuration change in CI.
   */
  differs: 7,
} as const;

/** Error codes the CLI adds to the API's: the server never answered, or answered something else. */
export type CliErrorCode = HttpErrorCode | 'unreachable' | 'bad_response';

export function exitCodeFor(code: CliErrorCode): number {
  switch (code) {
    case 'invalid_input':
      return EXIT.usage;
    case 'unknown_model':
    case 'unknown_version':
    case 'not_found':
      return EXIT.notFound;
    case 'no_pending_approval':
    case 'conflict':
      return EXIT.conflict;
    case 'unreachable':
    case 'unavailable':
      return EXIT.unreachable;
    case 'unauthorized':
    case 'forbidden':
      return EXIT.refused;
    default:
      return EXIT.failed;
  }
}

/** A request that did not succeed: what the server (or the network) said, as a stable code. */
export class RequestFailed extends Error {
  constructor(
    readonly code: CliErrorCode,
    message: string,
    readonly issues?: string[],
  ) {
    super(message);
    this.name = 'RequestFailed';
  }
}

/**
 * A command that failed and has already said so (on stderr, or as JSON on stdout with --json); main()
 * exits with `exitCode` without printing anything more.
 */
export class CommandFailed extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CommandFailed';
  }
}
