import { createHash, timingSafeEqual } from 'node:crypto';
import { WardenError } from '../domain/errors.ts';

/** What a route needs: operator commands, or producer inputs (evaluations and promotions). */
export type Access = 'command' | 'input';

export interface Caller {
  /** A stable name for the audit log, never the token: `operator:3fa9c1`, `producer:77d0e2` or `local`. */
  readonly identity: string;
}

export type AuthMode = 'tokens' | 'loopback' | 'closed';

export interface AuthPolicy {
  readonly mode: AuthMode;
  /** One line for the start-up log: who may change anything. */
  readonly summary: string;
  /** The caller of a mutating request, or a WardenError (unauthorized / forbidden) to reply with. */
  authenticate(authorization: string | undefined, access: Access): Caller | WardenError;
}

export interface AuthOptions {
  readonly host: string;
  readonly operatorTokens: readonly string[];
  readonly producerTokens: readonly string[];
}

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return (
    h === 'localhost' ||
    h === '::1' ||
    /^127\.\d+\.\d+\.\d+$/.test(h) ||
    /^::ffff:127\.\d+\.\d+\.\d+$/.test(h)
  );
}

/**
 * Bearer-token authentication for mutating routes. Operator tokens may do everything (they can roll back
 * by hand, so publishing a promotion adds nothing to their power); producer tokens may only publish
 * evaluations and promotions. With no token configured at all, a service listening on loopback only lets
 * local callers through, and any other service refuses every mutating request.
 */
export function createAuthPolicy(options: AuthOptions): AuthPolicy {
  const known = [
    ...options.operatorTokens.map((token) => ({ role: 'operator' as const, hash: digest(token) })),
    ...options.producerTokens.map((token) => ({ role: 'producer' as const, hash: digest(token) })),
  ];
  const loopback = isLoopbackHost(options.host);
  const mode: AuthMode = known.length > 0 ? 'tokens' : loopback ? 'loopback' : 'closed';
  const summary =
    mode === 'tokens'
      ? `mutating routes need a bearer token (${options.operatorTokens.length} operator, ${options.producerTokens.length} producer)`
      : mode === 'loopback'
        ? `no tokens configured: mutating routes are open to local callers only (listening on ${options.host})`
        : `no tokens configured and listening on ${options.host}, not loopback: every mutating route is refused; set WARDEN_OPERATOR_TOKENS and WARDEN_PRODUCER_TOKENS`;

  const expected = (access: Access) =>
    access === 'command' ? 'an operator token' : 'an operator or producer token';

  return {
    mode,
    summary,
    authenticate(authorization, access) {
      if (mode === 'loopback') return { identity: 'local' };
      if (mode === 'closed') {
        return new WardenError(
          'forbidden',
          `mutating routes are disabled: no tokens are configured and the service does not listen on loopback only (set WARDEN_OPERATOR_TOKENS / WARDEN_PRODUCER_TOKENS)`,
        );
      }
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
      if (!match) {
        return new WardenError(
          'unauthorized',
          `expected an "Authorization: Bearer <token>" header with ${expected(access)}`,
        );
      }
      const hash = digest(match[1]!);
      // Compare against every token, always, so timing says nothing about which one nearly matched.
      let role: 'operator' | 'producer' | null = null;
      for (const entry of known) {
        if (timingSafeEqual(entry.hash, hash) && role !== 'operator') role = entry.role;
      }
      if (role === null)
        return new WardenError(
          'unauthorized',
          `the bearer token is not one of the configured tokens; expected ${expected(access)}`,
        );
      if (access === 'command' && role !== 'operator') {
        return new WardenError(
          'forbidden',
          'a producer token may only publish evaluations and promotions; expected an operator token',
        );
      }
      return { identity: `${role}:${hash.toString('hex').slice(0, 6)}` };
    },
  };
}

/**
 * The `by` recorded in the audit log: who the body says asks, with the identity that was proved. A body
 * without `by` records the identity alone, so an anonymous request is still traceable to its token.
 */
export function auditName(caller: Caller, claimed: string | undefined): string {
  return claimed === undefined ? caller.identity : `${claimed} (${caller.identity})`;
}
