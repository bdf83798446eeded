import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigSchema, type Config, type ConfigInput } from './schema.ts';
import { ConfigError } from '../domain/errors.ts';
import { formatIssues } from '../domain/validation.ts';

/** Environment variables that override the file, each mapped to one path in the configuration. */
const ENV_PATHS: Record<string, { path: string[]; parse: (raw: string) => unknown }> = {
  WARDEN_DATA_DIR: { path: ['dataDir'], parse: (raw) => raw },
  WARDEN_DURABILITY: { path: ['durability'], parse: (raw) => raw },
  WARDEN_NATS_URL: { path: ['nats', 'url'], parse: (raw) => raw },
  WARDEN_NATS_CREDS: { path: ['nats', 'credsFile'], parse: (raw) => raw },
  WARDEN_NATS_PREFIX: { path: ['nats', 'prefix'], parse: (raw) => raw },
  WARDEN_NATS_PARTITIONS: { path: ['nats', 'partitions'], parse: parseNumber },
  WARDEN_LOG_LEVEL: { path: ['log', 'level'], parse: (raw) => raw },
  WARDEN_DETECTION_MODE: { path: ['detection', 'mode'], parse: (raw) => raw },
  WARDEN_REQUIRE_APPROVAL_FOR_SEVERE: { path: ['approval', 'requireForSevere'], parse: parseBoolean },
  WARDEN_COOLDOWN_SECONDS: { path: ['cooldownSeconds'], parse: parseNumber },
  WARDEN_PASSIVATE_AFTER_SECONDS: { path: ['passivateAfterSeconds'], parse: parseNumber },
  WARDEN_SHUTDOWN_TIMEOUT_SECONDS: { path: ['shutdownTimeoutSeconds'], parse: parseNumber },
  WARDEN_HTTP_PORT: { path: ['http', 'port'], parse: parseNumber },
  WARDEN_HTTP_HOST: { path: ['http', 'host'], parse: (raw) => raw },
  WARDEN_OPERATOR_TOKENS: { path: ['http', 'operatorTokens'], parse: parseList },
  WARDEN_PRODUCER_TOKENS: { path: ['http', 'producerTokens'], parse: parseList },
  WARDEN_VIEWER_TOKENS: { path: ['http', 'viewerTokens'], parse: parseList },
  WARDEN_ALERT_WEBHOOK_URL: { path: ['alerts', 'webhookUrl'], parse: (raw) => raw },
  WARDEN_INSPECT: { path: ['inspect'], parse: parseBoolean },
  WARDEN_INSPECT_HOST: { path: ['inspectHost'], parse: (raw) => raw },
};

function parseNumber(raw: string): unknown {
  const value = Number(raw);
  return raw.trim() === '' || Number.isNaN(value) ? raw : value; // left for zod: "expected number, received string"
}

function parseList(raw: string): unknown {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

function parseBoolean(raw: string): unknown {
  if (/^(true|1|yes)$/i.test(raw)) return true;
  if (/^(false|0|no)$/i.test(raw)) return false;
  return raw; // left for zod to reject with "expected boolean, received string"
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Where the configuration holds secrets: a refusal names the field, never the value. */
function isSecretPath(path: ReadonlyArray<PropertyKey>): boolean {
  const [section, field] = path.map(String);
  if (section === 'http') return field !== undefined && field.endsWith('Tokens');
  if (section === 'nats') return field === 'pass' || field === 'token' || field === 'url';
  return section === 'alerts' && field === 'webhookUrl';
}

/** Validates a configuration object once; every problem is listed in one error. The result is frozen. */
export function parseConfig(input: unknown, source = 'configuration'): Config {
  const models = (input as { models?: unknown } | null | undefined)?.models;
  if (typeof models === 'object' && models !== null && Object.hasOwn(models, '__proto__')) {
    // Parsing would drop it silently (a "__proto__" key cannot be an entry of an ordinary object).
    throw new ConfigError(source, [
      'models.__proto__: expected a model id other than "__proto__" (reserved), received "__proto__"',
    ]);
  }
  const result = ConfigSchema.safeParse(input ?? {});
  if (!result.success) {
    throw new ConfigError(source, formatIssues(result.error.issues, input ?? {}, { isSecret: isSecretPath }));
  }
  return deepFreeze(result.data);
}

export function readConfigFile(path: string): ConfigInput {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(path, [`cannot read the file: ${(cause as Error).message}`]);
  }
  try {
    const ext = extname(path).toLowerCase();
    return (ext === '.json' ? JSON.parse(text) : parseYaml(text)) ?? {};
  } catch (cause) {
    throw new ConfigError(path, [`expected YAML or JSON, could not parse: ${(cause as Error).message}`]);
  }
}

/**
 * The configuration of a running service: the file named by WARDEN_CONFIG (or `file`), then the
 * environment on top, validated once.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, file = env.WARDEN_CONFIG): Config {
  const source = file ? `${file} and the environment` : 'the environment';
  const base = file ? (readConfigFile(file) as unknown) : {};
  // A file that is not a mapping cannot take overrides: report it as it is.
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return parseConfig(base, source);
  for (const [name, { path, parse }] of Object.entries(ENV_PATHS)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') setPath(base as Record<string, unknown>, path, parse(raw));
  }
  return parseConfig(base, source);
}
