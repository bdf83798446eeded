import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { spawnTs } from '../harness/child-process.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/warden-process.ts', import.meta.url));
const nats = useSharedNats();

describe('events an instance committed and never published (NATS went away, then it died)', () => {
  it("reach the stream before the events of the next holder's commits of the same model, so that the pauses are taken in order", async () => {
    const prefix = 'carry';
    const model = 'carried';
    const stream = 'CARRY_EVENTS';
    const publish = (kind: string, body: object) =>
      nats.client.publish(`${prefix}.in.${kind}.${model}`, body);
    const evaluation = (id: string, version: string, elo: number) =>
      publish('evaluation', {
        event_id: id,
        model_id: `${model}_${version}`,
        current_elo: elo,
        games_played: 200,
      });
    const status = async () =>
      (
        await nats.client.request<{ models: Array<{ state: string }> }>(`${prefix}.cmd.status`, {
          model_id: model,
        })
      ).models[0]?.state;

    // The first instance takes the inputs; none of the events its commits cause leaves it.
    await using first = spawnTs(FIXTURE, {
      WARDEN_NATS_URL: nats.server.url,
      WARDEN_NATS_PREFIX: prefix,
      WARDEN_COOLDOWN_SECONDS: '3600',
      WARDEN_LOG_LEVEL: 'warn',
      WARDEN_TEST_CUT_EVENTS: '1',
    });
    await first.line('READY');
    // The second stands by, its sweeper of stranded events out of the way: only its commits order them.
    await using second = await startNatsWarden(nats.server.url, {
      config: { cooldownSeconds: 3600, nats: { prefix } },
      hooks: { store: { strandedAfterMs: 3_600_000 } },
    });
    expect(second.adapters.role()).toBe('standby');

    // The first one promotes v1 and v2, rolls v2 back and commits all of it; then it dies.
    await publish('promotion', { event_id: 'p1', model_id: `${model}_v1`, elo: 1500 });
    await publish('promotion', { event_id: 'p2', model_id: `${model}_v2`, elo: 1520 });
    await evaluation('e1', 'v2', 1400);
    await eventually(async () => expect(await status()).toBe('rolledBack'));
    expect(await nats.client.stored(`${prefix}.evt.>`, stream)).toEqual([]);
    expect(await first.kill('SIGKILL')).toBe('SIGKILL');

    // The second takes over, and the model's next rollback happens there.
    await eventually(() => expect(second.adapters.role()).toBe('active'), { timeoutMs: 10_000 });
    await publish('promotion', { event_id: 'p3', model_id: `${model}_v3`, elo: 1530 });
    await evaluation('e2', 'v3', 1405);
    await eventually(async () =>
      expect(second.warden.status(model).models[0]?.production_version).toBe('v1'),
    );
    await second.settled();

    // Every event of the model is in the stream once, in the order its commits made them.
    const events = await nats.client.stored(`${prefix}.evt.*.${model}`, stream);
    const numbers = events.map((e) => Number((e.data as { event_id: string }).event_id.split('.e')[1]));
    expect(numbers.length).toBeGreaterThan(4);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(new Set(numbers).size).toBe(numbers.length);
    const rollbacks = events
      .filter((e) => e.subject.includes('.promotion_rolled_back.'))
      .map((e) => (e.data as { rollback_id: string }).rollback_id);
    expect(rollbacks).toHaveLength(2);
    // The training config was paused by the first rollback, as in a run without the fault.
    expect(await nats.client.kv(`${prefix}_training`, model)).toMatchObject({
      status: 'paused',
      reason: expect.stringContaining(`rollback ${rollbacks[0]} `) as unknown,
    });
  });
});
