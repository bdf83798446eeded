import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { spawnTs, type Child } from '../harness/child-process.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/warden-process.ts', import.meta.url));

const nats = useSharedNats();

async function startWarden(env: Record<string, string>): Promise<Child> {
  const child = spawnTs(FIXTURE, { WARDEN_NATS_URL: nats.server.url, WARDEN_LOG_LEVEL: 'warn', ...env });
  await child.line('READY');
  return child;
}

/**
 * Issue 9's deterministic reproduction: a promotion delivered to a frozen Warden, which is then killed, must
 * still be applied before the evaluation published after the restart (with the production ack wait of 30 s,
 * a redelivery would come far too late).
 */
describe('per-model order through a crash', () => {
  for (const naming of ['the version', 'only the model'] as const) {
    it(`rolls v3 back to v2 when v3's promotion was in the hands of a killed instance (evaluation naming ${naming})`, async () => {
      const prefix = naming === 'the version' ? 'ordera' : 'orderb';
      const env = {
        WARDEN_NATS_PREFIX: prefix,
        WARDEN_COOLDOWN_SECONDS: '3600',
        WARDEN_TEST_ACK_WAIT_MS: '30000',
      };
      const stream = `${prefix.toUpperCase()}_IN`;
      const publish = (kind: string, body: object) => nats.client.publish(`${prefix}.in.${kind}.m`, body);
      const first = await startWarden(env);
      try {
        await publish('promotion', { event_id: 'p1', model_id: 'm_v1', elo: 1500 });
        await publish('promotion', { event_id: 'p2', model_id: 'm_v2', elo: 1520 });
        await eventually(async () =>
          expect(await nats.client.kv(`${prefix}_registry`, 'm')).toMatchObject({ version: 'v2' }),
        );
        await eventually(async () =>
          expect(
            (await nats.client.jsm.consumers.info(stream, `${prefix}_inputs`)).ack_floor.stream_seq,
          ).toBe(2),
        );
        first.signal('SIGSTOP');
        await publish('promotion', { event_id: 'p3', model_id: 'm_v3', elo: 1540 });
        // Delivered to the frozen process, not acknowledged.
        await eventually(async () => {
          const info = await nats.client.jsm.consumers.info(stream, `${prefix}_inputs`);
          expect(info.num_ack_pending).toBe(1);
          expect(info.num_pending).toBe(0);
        });
      } finally {
        expect(await first.kill('SIGKILL')).toBe('SIGKILL');
      }

      await using second = await startWarden(env);
      await publish('evaluation', {
        event_id: 'e1',
        model_id: naming === 'the version' ? 'm_v3' : 'm',
        current_elo: 1400,
        games_played: 200,
      });
      const rollbacks = await eventually(
        async () => {
          const stored = await nats.client.stored(
            `${prefix}.evt.promotion_rolled_back.m`,
            `${prefix.toUpperCase()}_EVENTS`,
          );
          expect(stored).toHaveLength(1);
          return stored;
        },
        { timeoutMs: 15_000 },
      );
      expect(rollbacks[0]!.data).toMatchObject({ from_version: 'v3', to_version: 'v2' });
      await eventually(async () =>
        expect(await nats.client.kv(`${prefix}_registry`, 'm')).toMatchObject({ version: 'v2' }),
      );
      const status = await nats.client.request<{
        models: Array<{ production_version: string; versions: Array<{ version: string }> }>;
      }>(`${prefix}.cmd.status`, { model_id: 'm' });
      expect(status.models[0]!.production_version).toBe('v2');
      expect(status.models[0]!.versions.map((v) => v.version)).toEqual(['v1', 'v2', 'v3']);
      expect(await second.kill('SIGTERM')).toBe(0);
    });
  }
});
