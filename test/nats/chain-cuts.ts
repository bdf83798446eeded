import { expect } from 'vitest';
import { eventually } from '../harness/eventually.ts';
import type { TestClient } from '../harness/nats-client.ts';

/**
 * The writes of a regression's chain, from the detection to the training config's pause, each as the
 * cutting proxy recognizes it (test/harness/cutting-proxy.ts): the subject it is published on, and a piece
 * of its body.
 */
export interface ChainCut {
  readonly what: string;
  readonly subject: (prefix: string) => string;
  readonly text: string;
}

export function chainCuts(model: string): ChainCut[] {
  return [
    {
      what: "the detection's write",
      subject: (p) => `$KV.${p}_actors.model.${model}`,
      text: '"rollingBack"',
    },
    {
      what: "the registry's rollback",
      subject: (p) => `$KV.${p}_registry.${model}`,
      text: '"rollback_id":"',
    },
    {
      what: "the rollback result's write",
      subject: (p) => `$KV.${p}_actors.model.${model}`,
      text: '"rolledBack"',
    },
    {
      what: 'the rollback event (its publication)',
      subject: (p) => `${p}.evt.promotion_rolled_back.${model}`,
      text: '"rollback_id"',
    },
    {
      what: "the training config's pause",
      subject: (p) => `$KV.${p}_actors.training.${model}`,
      text: '"paused"',
    },
  ];
}

/**
 * The chain ended as without the fault, each step once: one detection, one rollback, one pause; the
 * registry on v1 and the model in cooldown; every input of `consumer` handled and acknowledged (nothing
 * left to deliver, nothing in hand).
 */
export async function expectChainEndedOnce(
  client: TestClient,
  prefix: string,
  model: string,
  consumer: string,
): Promise<void> {
  const stream = `${prefix.toUpperCase()}_EVENTS`;
  const count = async (kind: string) => (await client.stored(`${prefix}.evt.${kind}.>`, stream)).length;
  await eventually(async () => expect(await count('training_paused')).toBe(1), { timeoutMs: 20_000 });
  expect(await count('regression_detected')).toBe(1);
  expect(await count('promotion_rolled_back')).toBe(1);
  expect(await client.kv(`${prefix}_registry`, model)).toMatchObject({ version: 'v1' });
  await eventually(
    async () => {
      const status = await client.request<{
        models: Array<{ state: string; production_version: string }>;
      }>(`${prefix}.cmd.status`, { model_id: model });
      expect(status.models[0]).toMatchObject({ state: 'cooldown', production_version: 'v1' });
    },
    { timeoutMs: 10_000 },
  );
  await eventually(
    async () => {
      const info = await client.jsm.consumers.info(`${prefix.toUpperCase()}_IN`, consumer);
      expect(info.num_pending + info.num_ack_pending).toBe(0);
    },
    { timeoutMs: 10_000 },
  );
  // Nothing happened twice once the chain had ended either.
  expect(await count('training_paused')).toBe(1);
  expect(await count('promotion_rolled_back')).toBe(1);
}
