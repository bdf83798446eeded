/**
 * The one canonical way to read a model reference and derive a training-config key. Every component
 * (the bus adapters, the HTTP API, the runtime, the CLI) goes through here; the seed had four different
 * derivations and paused the wrong config (or none) as a result.
 */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** A trailing `_v<digits>` (optionally with dotted parts, e.g. `_v3.1`) names the version. */
const VERSION_SUFFIX = /^(.+)_(v\d+(?:\.\d+)*)$/;

export interface ModelRef {
  readonly modelId: string;
  readonly version: string | undefined;
}

/**
 * "hex8_2p_v42" is model "hex8_2p", version "v42"; "hex8_2p" is model "hex8_2p" with no version;
 * "canonical_hex8_2p" stays whole. With an explicit version, a matching suffix is stripped
 * ("hex8_2p_v42" + "v42" is "hex8_2p"); any other suffix is part of the model id.
 */
export function parseModelRef(ref: string, explicitVersion?: string): ModelRef {
  if (explicitVersion !== undefined) {
    const suffix = `_${explicitVersion}`;
    const modelId = ref.endsWith(suffix) && ref.length > suffix.length ? ref.slice(0, -suffix.length) : ref;
    return { modelId, version: explicitVersion };
  }
  const match = VERSION_SUFFIX.exec(ref);
  if (match) return { modelId: match[1]!, version: match[2]! };
  return { modelId: ref, version: undefined };
}

/** Whether a model id names a model Warden already watches (the runtime answers). */
export type IsKnownModel = (modelId: string) => boolean;

/**
 * The one reading of a model reference, used by promotions, evaluations, commands and HTTP paths alike:
 * a reference that is exactly a known model is that model, whatever its suffix; otherwise it is read by
 * parseModelRef (a `_v<N>` suffix, or the explicit version's suffix, names the version). So once
 * `resnet_v2` is a model, "resnet_v2" always means it, and never model `resnet`, version `v2`.
 *
 * The case no rule can decide: a first promotion of `resnet_v2` with no `version` field, when no model
 * `resnet_v2` exists yet, is model `resnet`, version `v2`. To create a model whose id ends in `_v<N>`,
 * send `version` explicitly.
 */
export function resolveModelRef(
  ref: string,
  explicitVersion: string | undefined,
  isKnown: IsKnownModel,
): ModelRef {
  if (isKnown(ref)) return { modelId: ref, version: explicitVersion };
  return parseModelRef(ref, explicitVersion);
}

export function isToken(value: string): boolean {
  return TOKEN_PATTERN.test(value);
}

/** Overrides by model id, from the configuration. */
export type ConfigKeyOverrides = Readonly<Record<string, { readonly configKey?: string | undefined }>>;

/**
 * The training-config key of a model: the one the event names, else the configuration's override for the
 * model, else the model id itself.
 */
export function configKeyFor(
  modelId: string,
  overrides: ConfigKeyOverrides = {},
  fromEvent?: string,
): string {
  return (
    fromEvent ?? (Object.hasOwn(overrides, modelId) ? overrides[modelId]?.configKey : undefined) ?? modelId
  );
}

/**
 * A table looked up by ids that producers choose: without a prototype, so that a model named "constructor",
 * "toString" or "__proto__" finds its own entry or nothing, never an inherited member.
 */
export function lookupTable<T>(entries: Readonly<Record<string, T>>): Record<string, T> {
  const table = Object.create(null) as Record<string, T>;
  for (const [key, value] of Object.entries(entries)) {
    Object.defineProperty(table, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return table;
}
