import type { z } from 'zod';
import { ValidationError } from './errors.ts';

function describeReceived(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isNaN(value)) return 'NaN';
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  if (typeof value === 'object') return 'object';
  return String(value);
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let node = root;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

/**
 * One line per issue, naming the field, what was expected and what was received:
 * `games_played: expected a number >= 0, received -3`.
 */
export interface FormatOptions {
  /** Fields whose value is a secret (tokens, passwords, URLs with credentials): never echoed back. */
  readonly isSecret?: (path: ReadonlyArray<PropertyKey>) => boolean;
}

/**
 * Of several bounds a value breaks on one side (an integer's safe range and a field's own limit, say), the
 * tightest: it is the one the caller has to meet, and the others say the same thing less precisely.
 */
function tightestBounds(issues: ReadonlyArray<z.core.$ZodIssue>): z.core.$ZodIssue[] {
  const tightest = new Map<string, z.core.$ZodIssue>();
  const bound = (i: z.core.$ZodIssue) =>
    i.code === 'too_big' ? Number(i.maximum) : i.code === 'too_small' ? -Number(i.minimum) : NaN;
  for (const issue of issues) {
    if (issue.code !== 'too_big' && issue.code !== 'too_small') continue;
    const side = `${issue.code}:${issue.path.map(String).join('.')}`;
    const kept = tightest.get(side);
    if (!kept || bound(issue) < bound(kept)) tightest.set(side, issue);
  }
  const kept = new Set(tightest.values());
  return issues.filter((i) => (i.code !== 'too_big' && i.code !== 'too_small') || kept.has(i));
}

export function formatIssues(
  issues: ReadonlyArray<z.core.$ZodIssue>,
  root?: unknown,
  options: FormatOptions = {},
): string[] {
  return tightestBounds(issues).map((issue) => {
    const field = issue.path.length > 0 ? issue.path.join('.') : '(root)';
    if (issue.code === 'unrecognized_keys') {
      const prefix = issue.path.length > 0 ? `${field}.` : '';
      return issue.keys
        .map((key) => `${prefix}${key}: unknown field (check its spelling; unknown fields are refused)`)
        .join('; ');
    }
    if (issue.code === 'invalid_key') {
      // zod keeps the key's own problem in the nested issues; the received value is the key itself.
      const key = String(issue.path.at(-1));
      const inner = issue.issues.map((i) => i.message).join('; ');
      return `${field}: invalid key: ${inner}, received "${key}"`;
    }
    // A missing field: zod says "received undefined", which is JavaScript, not what the caller sent.
    if (issue.code === 'invalid_type' && root !== undefined && valueAt(root, issue.path) === undefined) {
      return `${field}: required: expected ${issue.expected}, received nothing`;
    }
    let message = issue.message;
    if (root !== undefined && !/received/.test(message)) {
      const value = valueAt(root, issue.path);
      const received =
        value === undefined
          ? 'nothing'
          : options.isSecret?.(issue.path) && typeof value === 'string'
            ? `a secret of ${value.length} characters (not shown)`
            : describeReceived(value);
      message += `, received ${received}`;
    }
    return `${field}: ${message}`;
  });
}

/** Parses at the edge; bad input becomes a ValidationError that lists every problem. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    // Nothing at all (an empty body): one line, rather than zod's "received undefined".
    const rootIssue = result.error.issues.find((i) => i.path.length === 0 && i.code === 'invalid_type');
    if (input === undefined && rootIssue?.code === 'invalid_type') {
      throw new ValidationError(what, [`(root): required: expected ${rootIssue.expected}, received nothing`]);
    }
    throw new ValidationError(what, formatIssues(result.error.issues, input));
  }
  return result.data;
}
