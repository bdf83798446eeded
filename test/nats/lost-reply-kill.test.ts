/**
 * A write whose answer is lost, and the instance that made it SIGKILLed right then: the write landed, its
 * maker is gone before it could learn so, and the standby takes over (a lease, 2 s in the tests). Warden
 * processes; the active one talks to nats-server through a proxy that cuts the connection right after the
 * server took the chosen write (test/harness/cutting-proxy.ts). Whichever write of the chain is cut, the
 * standby ends it as without the fault: one detection, one rollback, one pause, the registry on v1, the
 * model in cooldown, every input acknowledged.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { spawnTs, type Child } from '../harness/child-process.ts';
import { useCuttingProxy } from '../harness/cutting-proxy.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { publishRegression } from '../harness/regression.ts';
import { chainCuts } from './chain-cuts.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/warden-process.ts', import.meta.url));
const nats = useSharedNats();
const cutting = useCuttingProxy(nats);

const MODEL = 'km';

async function warden(url: string, prefix: string): Promise<Child> {
  const child = spawnTs(FIXTURE, {
    WARDEN_NATS_URL: url,
    WARDEN_NATS_PREFIX: prefix,
    WARDEN_LOG_LEVEL: 'warn',
    WARDEN_TEST_TRACE: '1',
  });
  await child.line('READY');
  return child;
}

const CUTS = chainCuts(MODEL);

describe('NATS mode: a write whose answer is lost, and its maker SIGKILLed then', () => {
  CUTS.forEach(({ what, subject, text }, i) => {
    it(`at ${what}: the standby ends the chain, everything once`, async () => {
      const prefix = `lk${i}`;
      const stream = `${prefix.toUpperCase()}_EVENTS`;
      // The first takes the lease (through the proxy); the second is the standby, straight to the server.
      await using active = await warden(cutting.proxy.url, prefix);
      await active.line('ROLE active');
      await using standby = await warden(nats.server.url, prefix);
      const cut = cutting.proxy.cutAfter((p) => p.subject === subject(prefix) && p.body.includes(text));
      await publishRegression(nats.client, prefix, MODEL);
      await cut;
      await active.kill('SIGKILL');
      await standby.line('ROLE active', 10_000);
      const count = async (kind: string) => (await nats.client.stored(`${prefix}.${kind}.>`, stream)).length;
      await eventually(async () => expect(await count('evt.training_paused')).toBe(1), { timeoutMs: 20_000 });
      expect(await count('evt.regression_detected')).toBe(1);
      expect(await count('evt.promotion_rolled_back')).toBe(1);
      expect(await nats.client.kv(`${prefix}_registry`, MODEL)).toMatchObject({ version: 'v1' });
      await eventually(
        async () => {
          const status = await nats.client.request<{
            models: Array<{ state: string; production_version: string }>;
          }>(`${prefix}.cmd.status`, { model_id: MODEL });
          expect(status.models[0]).toMatchObject({ state: 'cooldown', production_version: 'v1' });
        },
        { timeoutMs: 10_000 },
      );
      // Every input handled and acknowledged: nothing left to deliver, nothing in hand. (The standby made the
      // durable again from its acknowledgement floor, so the floor itself is the new consumer's.)
      await eventually(
        async () => {
          const info = await nats.client.jsm.consumers.info(`${prefix.toUpperCase()}_IN`, `${prefix}_inputs`);
          expect(info.num_pending + info.num_ack_pending).toBe(0);
        },
        { timeoutMs: 10_000 },
      );
    }, 60_000);
  });
});
