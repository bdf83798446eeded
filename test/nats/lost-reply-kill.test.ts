/**
 * A write whose answer is lost, and the instance that made it SIGKILLed right then: the write landed, its
 * maker is gone before it could learn so, and the standby takes over (a lease, 2 s in the tests). Warden
 * processes; the active one talks to nats-server through a proxy that cuts the connection right after the
 * server took the chosen write (test/harness/cutting-proxy.ts). Whichever write of the chain is cut, the
 * standby ends it as without the fault: one detection, one rollback, one pause, the registry on v1, the
 * model in cooldown, every input acknowledged.
 */
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import { spawnTs, type Child } from '../harness/child-process.ts';
import { useCuttingProxy } from '../harness/cutting-proxy.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { publishRegression } from '../harness/regression.ts';
import { chainCuts, expectChainEndedOnce } from './chain-cuts.ts';

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
      // The first takes the lease (through the proxy); the second is the standby, straight to the server.
      await using active = await warden(cutting.proxy.url, prefix);
      await active.line('ROLE active');
      await using standby = await warden(nats.server.url, prefix);
      const cut = cutting.proxy.cutAfter((p) => p.subject === subject(prefix) && p.body.includes(text));
      await publishRegression(nats.client, prefix, MODEL);
      await cut;
      await active.kill('SIGKILL');
      await standby.line('ROLE active', 10_000);
      // The standby made the durable again from its acknowledgement floor, so the floor is the new consumer's.
      await expectChainEndedOnce(nats.client, prefix, MODEL, `${prefix}_inputs`);
    }, 60_000);
  });
});
