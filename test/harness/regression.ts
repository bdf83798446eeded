import type { TestClient } from './nats-client.ts';

/**
 * A model promoted twice (v1 at 1500, v2 at 1520), then a critical regression of v2 (1400 over 200 games):
 * one automatic rollback to v1, and its training config paused, published as a pipeline would.
 */
export async function publishRegression(client: TestClient, prefix: string, model: string): Promise<void> {
  await client.publish(`${prefix}.in.promotion.${model}`, {
    event_id: `${model}-p1`,
    model_id: `${model}_v1`,
    elo: 1500,
  });
  await client.publish(`${prefix}.in.promotion.${model}`, {
    event_id: `${model}-p2`,
    model_id: `${model}_v2`,
    elo: 1520,
  });
  await client.publish(`${prefix}.in.evaluation.${model}`, {
    event_id: `${model}-e1`,
    model_id: `${model}_v2`,
    current_elo: 1400,
    games_played: 200,
  });
}
