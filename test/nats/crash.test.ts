import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { spawnTs, type Child } from '../harness/child-process.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/warden-process.ts', import.meta.url));

const nats = useSharedNats();

/** A Warden process on this test's NATS; every model here uses its own prefix-free ids, so tests share one nats.server. */
async function startWarden(env: Record<string, string> = {}): Promise<Child> {
  const child = spawnTs(FIXTURE, { WARDEN_NATS_URL: nats.server.url, WARDEN_LOG_LEVEL: 'warn', ...env });
  await child.line('READY');
  return child;
}

async function promoteTwice(model: string): Promise<void> {
  await nats.client.publish(`warden.in.promotion.${model}`, {
    event_id: `${model}-p1`,
    model_id: `${model}_v1`,
    elo: 1500,
  });
  await nats.client.publish(`warden.in.promotion.${model}`, {
    event_id: `${model}-p2`,
    model_id: `${model}_v2`,
    elo: 1520,
  });
}

const rollbacksOf = async (model: string) => nats.client.stored(`warden.evt.promotion_rolled_back.${model}`);
const pausesOf = async (model: string) => nats.client.stored(`warden.evt.training_paused.${model}`);

/** After the restart: exactly one rollback, one pause, the registry on v1, and redelivered inputs change nothing. */
async function expectExactlyOneRollback(model: string, evaluation: Record<string, unknown>): Promise<void> {
  await eventually(async () => expect(await rollbacksOf(model)).toHaveLength(1), { timeoutMs: 15_000 });
  await eventually(async () => expect(await pausesOf(model)).toHaveLength(1), { timeoutMs: 10_000 });
  expect(await nats.client.kv('warden_registry', model)).toMatchObject({ version: 'v1' });
  // The same evaluation again (a producer retrying), and a status round trip to let it through.
  await nats.client.publish(`warden.in.evaluation.${model}`, evaluation);
  await eventually(async () => {
    const status = await nats.client.request<{
      ok: boolean;
      models: Array<{ state: string; production_version: string }>;
    }>('warden.cmd.status', {
      model_id: model,
    });
    expect(status.models[0]).toMatchObject({ production_version: 'v1' });
    expect(status.models[0]!.state).not.toBe('rollingBack');
  });
  // Every input, the repeated one included, handled and acknowledged.
  const last = (await nats.client.jsm.streams.info('WARDEN_IN')).state.last_seq;
  await eventually(
    async () =>
      expect((await nats.client.jsm.consumers.info('WARDEN_IN', 'warden_inputs')).ack_floor.stream_seq).toBe(
        last,
      ),
    {
      timeoutMs: 15_000,
    },
  );
  expect(await rollbacksOf(model)).toHaveLength(1);
  expect(await pausesOf(model)).toHaveLength(1);
}

describe('Warden killed with SIGKILL, then restarted', () => {
  for (const hold of ['before-registry', 'after-registry'] as const) {
    it(`rolls back exactly once when killed in rollingBack (${hold})`, async () => {
      const model = `crash_${hold.split('-')[0]}`;
      const critical = {
        event_id: `${model}-e1`,
        model_id: `${model}_v2`,
        current_elo: 1420,
        games_played: 200,
      };
      const first = await startWarden({ WARDEN_TEST_HOLD: hold });
      try {
        await promoteTwice(model);
        await nats.client.publish(`warden.in.evaluation.${model}`, critical);
        await first.line('HOLDING');
        expect(await first.kill('SIGKILL')).toBe('SIGKILL');
      } finally {
        await first.kill('SIGKILL');
      }
      expect(await rollbacksOf(model)).toHaveLength(0);
      const pointer = await nats.client.kv<{ version: string; rollback_id: string | null }>(
        'warden_registry',
        model,
      );
      if (hold === 'after-registry')
        expect(pointer).toMatchObject({ version: 'v1', rollback_id: expect.any(String) });
      else expect(pointer?.rollback_id ?? null).toBeNull();

      await using second = await startWarden();
      await expectExactlyOneRollback(model, critical);
      expect(await second.kill('SIGTERM')).toBe(0);
    });
  }

  it('rolls back exactly once when killed in awaitingApproval and approved after the restart', async () => {
    const model = 'crash_approval';
    const severe = { event_id: `${model}-e1`, model_id: `${model}_v2`, current_elo: 1460, games_played: 200 };
    const env = { WARDEN_REQUIRE_APPROVAL_FOR_SEVERE: 'true' };
    const first = await startWarden(env);
    try {
      await promoteTwice(model);
      await nats.client.publish(`warden.in.evaluation.${model}`, severe);
      await eventually(async () =>
        expect(await nats.client.stored(`warden.evt.rollback_approval_requested.${model}`)).toHaveLength(1),
      );
    } finally {
      expect(await first.kill('SIGKILL')).toBe('SIGKILL');
    }

    await using second = await startWarden(env);
    const status = await nats.client.request<{ models: Array<{ state: string }> }>('warden.cmd.status', {
      model_id: model,
    });
    expect(status.models[0]!.state).toBe('awaitingApproval');
    expect(await nats.client.request('warden.cmd.approve.' + model, { by: 'alice' })).toMatchObject({
      ok: true,
    });
    await expectExactlyOneRollback(model, severe);
    expect(await nats.client.request('warden.cmd.approve.' + model, { by: 'alice' })).toMatchObject({
      ok: false,
      error: { code: 'no_pending_approval' },
    });
    expect(await nats.client.stored(`warden.evt.rollback_approval_requested.${model}`)).toHaveLength(1);
    expect(await second.kill('SIGTERM')).toBe(0);
  });
});
