/**
 * Candidate configurations for the policy lab: a file in the service's configuration format (what
 * `warden replay --config` and a shadow policy's `file` name), or overrides laid over the live
 * configuration (a shadow policy's `overrides`). Either way it is validated by the same schema, once.
 */
import { parseConfig, readConfigFile } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { ConfigError } from '../domain/errors.ts';

/** The parts of a configuration that decide; the rest (transport, HTTP, alerts) is never a candidate's. */
export const POLICY_KEYS = [
  'detection',
  'approval',
  'cooldownSeconds',
  'autoRollbackLimit',
  'training',
  'models',
] as const;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `over` laid over `base`, deeply. Keys are defined, not assigned: an override keyed "__proto__" (JSON and
 * YAML make it an own key) stays an entry that the schema then refuses, instead of replacing a prototype.
 */
function merge(base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const below = Object.hasOwn(base, key) ? base[key] : undefined;
    Object.defineProperty(out, key, {
      value: merge(below, value),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** The live configuration with `overrides` laid over its policy (deeply), validated as a whole. */
export function overlayConfig(live: Config, overrides: Record<string, unknown>, source: string): Config {
  const unknown = Object.keys(overrides).filter((k) => !(POLICY_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw new ConfigError(
      source,
      unknown.map(
        (k) => `${k}: expected one of the policy's settings (${POLICY_KEYS.join(', ')}), received "${k}"`,
      ),
    );
  }
  const base: Record<string, unknown> = {};
  for (const key of POLICY_KEYS) base[key] = live[key];
  return parseConfig(merge(base, overrides), source);
}

/** A candidate configuration file, read and validated like the service's own. */
export function readCandidate(path: string): Config {
  return parseConfig(readConfigFile(path), path);
}

/** A candidate given inline (the HTTP replay job): a whole configuration object. */
export function parseCandidate(value: unknown, source: string): Config {
  return parseConfig(value, source);
}
