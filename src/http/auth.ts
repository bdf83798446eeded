import { createHash, timingSafeEqual } from 'node:crypto';
import { WardenError } from '../domain/errors.ts';

/** What a route needs: operator commands, producer inputs (evaluations and promotions), or reads. */
export type Access = 'command' | 'input' | 'read';

export type Role = 'operator' | 'producer' | 'viewer';

export interface Caller {
  /**
   * A stable name for the audit log, never the token: `operator:3fa9c1`, `producer:77d0e2`, `viewer:0b1c2d`,
   * `local` (no tokens, loopback) or `anonymous` (a read while reads are open).
   */
  readonly identity: string;
  /** The role the token proved; null for `local` and `anonymous`. */
  readonly role?: Role | null;
}

export type AuthMode = 'tokens' | 'loopback' | 'closed';

export interface AuthPolicy {
  readonly mode: AuthMode;
  /** One line for the start-up log: who may change anything. */
  readonly summary: string;
  /** Whether reads need a token (viewer tokens are configured). */
  readonly readsNeedToken: boolean;
  /** The caller of a request, or a WardenError (unauthorized / forbidden) to reply with. */
  authenticate(authorization: string | undefined, access: Access): Caller | WardenError;
}

export interface AuthOptions {
  readonly host: string;
  readonly operatorTokens: readonly string[];
  readonly producerTokens: readonly string[];
  /** Read-only tokens; once any is configured, every read needs a token (viewer, operator or producer). */
  readonly viewerTokens?: readonly string[] | undefined;
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
  const viewerTokens = options.viewerTokens ?? [];
  const known: Array<{ role: Role; hash: Buffer }> = [
    ...options.operatorTokens.map((token) => ({ role: 'operator' as const, hash: digest(token) })),
    ...options.producerTokens.map((token) => ({ role: 'producer' as const, hash: digest(token) })),
  ];
  const loopback = isLoopbackHost(options.host);
  // Viewer tokens change who may read, never who may change anything: the mode counts the others only.
  const mode: AuthMode = known.length > 0 ? 'tokens' : loopback ? 'loopback' : 'closed';
  known.push(...viewerTokens.map((token) => ({ role: 'viewer' as const, hash: digest(token) })));
  const readsNeedToken = viewerTokens.length > 0;
  const reads = readsNeedToken
    ? `; reads need a token (${viewerTokens.length} viewer)`
    : '; reads are open (no viewer token configured)';
  const summary =
    (mode === 'tokens'
      ? `mutating routes need a bearer token (${options.operatorTokens.length} operator, ${options.producerTokens.length} producer)`
      : mode === 'loopback'
        ? `no tokens configured: mutating routes are open to local callers only (listening on ${options.host})`
        : `no tokens configured and listening on ${options.host}, not loopback: every mutating route is refused; set WARDEN_OPERATOR_TOKENS and WARDEN_PRODUCER_TOKENS`) +
    reads;

  const expected = (access: Access) =>
    access === 'command'
      ? 'an operator token'
      : access === 'input'
        ? 'an operator or producer token'
        : 'a viewer, operator or producer token';

  /** The role of a presented token; null when no token was presented, a WardenError when it is unknown. */
  const identify = (authorization: string | undefined, access: Access) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) return null;
    const hash = digest(match[1]!);
    // Compare against every token, always, so timing says nothing about which one nearly matched.
    let role: Role | null = null;
    const rank = (r: Role | null) => (r === 'operator' ? 3 : r === 'producer' ? 2 : r === 'viewer' ? 1 : 0);
    for (const entry of known) {
      if (timingSafeEqual(entry.hash, hash) && rank(entry.role) > rank(role)) role = entry.role;
    }
    if (role === null)
      return new WardenError(
        'unauthorized',
        `the bearer token is not one of the configured tokens; expected ${expected(access)}`,
      );
    return { identity: `${role}:${hash.toString('hex').slice(0, 6)}`, role };
  };

  const read = (authorization: string | undefined): Caller | WardenError => {
    const caller = identify(authorization, 'read');
    if (caller instanceof WardenError) return caller;
    if (caller) return caller;
    if (!readsNeedToken) return { identity: mode === 'loopback' ? 'local' : 'anonymous', role: null };
    return new WardenError(
      'unauthorized',
      `expected an "Authorization: Bearer <token>" header with ${expected('read')}`,
    );
  };

  return {
    mode,
    summary,
    readsNeedToken,
    authenticate(authorization, access) {
      if (access === 'read') return read(authorization);
      if (mode === 'loopback') return { identity: 'local', role: null };
      if (mode === 'closed') {
        return new WardenError(
          'forbidden',
          `mutating routes are disabled: no tokens are configured and the service does not listen on loopback only (set WARDEN_OPERATOR_TOKENS / WARDEN_PRODUCER_TOKENS)`,
        );
      }
      const caller = identify(authorization, access);
      if (caller instanceof WardenError) return caller;
      if (!caller) {
        return new WardenError(
          'unauthorized',
          `expected an "Authorization: Bearer <token>" header with ${expected(access)}`,
        );
      }
      if (caller.role === 'viewer') {
        return new WardenError('forbidden', `a viewer token may only read; expected ${expected(access)}`);
      }
      if (access === 'command' && caller.role !== 'operator') {
        return new WardenError(
          'forbidden',
          'a producer token may only publish evaluations and promotions; expected an operator token',
        );
      }
      return caller;
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
