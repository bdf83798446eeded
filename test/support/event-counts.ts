import type { TestClient } from '../harness/nats-client.ts';

/**
 * How many events of `kind` each actor has in a prefix's events stream, keyed by the payload's `field`
 * (`model_id` or `config_key`): what "each exactly once" is checked against.
 */
export async function eventsPerActor(
  client: TestClient,
  prefix: string,
  kind: string,
  field: 'model_id' | 'config_key',
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const m of await client.stored(`${prefix}.evt.${kind}.>`, `${prefix.toUpperCase()}_EVENTS`)) {
    const key = (m.data as Record<string, string>)[field]!;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** Each of `keys` once. */
export const onceEach = (keys: readonly string[]): Record<string, number> =>
  Object.fromEntries(keys.map((k) => [k, 1]));
