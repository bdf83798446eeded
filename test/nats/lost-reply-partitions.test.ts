/**
 * Three instances sharing six input partitions; one write of a regression's chain loses its answer, and the
 * instance that made it is SIGKILLed right then. The write landed, its maker is gone before it could learn
 * so, and the two others take over its partitions (and the training configs, if it held them). Whichever
 * write of the chain is cut, they end it as without the fault: one detection, one rollback, one pause, the
 * registry on v1, the model in cooldown, the partition's inputs all acknowledged. The instance that is cut
 * talks to nats-server through the cutting proxy (test/harness/cutting-proxy.ts); the model is one of the
 * partitions it holds once the three have shared them out.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { partitionOf } from '../../src/nats/partitions-map.ts';
import { spawnTs, type Child } from '../harness/child-process.ts';
import { useCuttingProxy } from '../harness/cutting-proxy.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { publishRegression } from '../harness/regression.ts';
import { chainCuts, expectChainEndedOnce } from './chain-cuts.ts';
import { heldPartitions } from './chaos-stream.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/warden-process.ts', import.meta.url));
const PARTITIONS = 6;
const CUTS = chainCuts('any').length;
const prefixOf = (i: number) => `lpk${i}`;
const nats = useSharedNats({
  partitions: Object.fromEntries(Array.from({ length: CUTS }, (_, i) => [prefixOf(i), PARTITIONS])),
});
const cutting = useCuttingProxy(nats);

async function warden(url: string, prefix: string): Promise<Child> {
  const child = spawnTs(FIXTURE, {
    WARDEN_NATS_URL: url,
    WARDEN_NATS_PREFIX: prefix,
    WARDEN_NATS_PARTITIONS: String(PARTITIONS),
    WARDEN_LOG_LEVEL: 'warn',
    WARDEN_TEST_TRACE: '1',
  });
  await child.line('READY');
  return child;
}

describe('NATS mode, three instances and partitions: a write whose answer is lost, and its maker SIGKILLed then', () => {
  chainCuts('any').forEach(({ what }, i) => {
    it(`at ${what}: the others end the chain, everything once`, async () => {
      const prefix = prefixOf(i);
      // The first takes every partition (through the proxy), then gives the others their share.
      await using cut = await warden(cutting.proxy.url, prefix);
      await using second = await warden(nats.server.url, prefix);
      await using third = await warden(nats.server.url, prefix);
      const instances = [cut, second, third];
      await eventually(
        () => {
          const held = instances.map((c) => heldPartitions(c).held);
          expect(held.map((h) => h.length)).toEqual([2, 2, 2]);
          expect(new Set(held.flat()).size).toBe(PARTITIONS);
        },
        { timeoutMs: 15_000 },
      );
      const ours = heldPartitions(cut).held;
      const model = Array.from({ length: 100 }, (_, n) => `kp${n}`).find((m) =>
        ours.includes(partitionOf(m, PARTITIONS)),
      )!;
      const { subject, text } = chainCuts(model)[i]!;
      const cutDone = cutting.proxy.cutAfter((p) => p.subject === subject(prefix) && p.body.includes(text));
      await publishRegression(nats.client, prefix, model);
      await cutDone;
      await cut.kill('SIGKILL');

      // The partition's inputs handled and acknowledged by its new holder.
      await expectChainEndedOnce(
        nats.client,
        prefix,
        model,
        `${prefix}_inputs_${partitionOf(model, PARTITIONS)}`,
      );
    }, 90_000);
  });
});
