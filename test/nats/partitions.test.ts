import { beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { spawnTs, type Child } from '../harness/child-process.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { partitionOf } from '../../src/nats/partitions-map.ts';
import { parseConfig } from '../../src/config/load.ts';
import { readInputStream } from '../../src/lab/nats-source.ts';
import {
  chaosStream,
  crashOutput,
  expectLikeClean,
  heldPartitions,
  publishInputs,
  random,
  runOutcome,
  type RunOutcome,
} from './chaos-stream.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/warden-process.ts', import.meta.url));
const MODELS = 60;
const PARTITIONS = 6;
/** Printed with every failure: CHAOS_SEED=<seed> replays the same stream and the same fault moments. */
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 1_000_000));
const COOLDOWN = '3600';

// `pnomap` has no server mapping: its inputs reach the stream unpartitioned and Warden moves them.
const nats = useSharedNats({
  partitions: { pone: PARTITIONS, pthree: PARTITIONS, pkill: PARTITIONS, ptimer: PARTITIONS },
});
let clean: RunOutcome;

function warden(prefix: string): Child {
  return spawnTs(FIXTURE, {
    WARDEN_NATS_URL: nats.server.url,
    WARDEN_NATS_PREFIX: prefix,
    WARDEN_NATS_PARTITIONS: String(PARTITIONS),
    WARDEN_COOLDOWN_SECONDS: COOLDOWN,
    WARDEN_LOG_LEVEL: 'warn',
    WARDEN_TEST_TRACE: '1',
  });
}

describe(`NATS mode with input partitions (seed ${SEED})`, () => {
  beforeAll(async () => {
    // The clean run: one instance, one partition, no faults.
    const prefix = 'pclean';
    await using w = await startNatsWarden(nats.server.url, {
      config: { cooldownSeconds: Number(COOLDOWN), nats: { prefix } },
    });
    await publishInputs(nats.client, chaosStream(prefix, MODELS, SEED));
    await w.settled();
    clean = await runOutcome(nats.client, prefix);
    expect(Object.keys(clean.models)).toHaveLength(MODELS);
    const rollbacks = Object.values(clean.events)
      .flat()
      .filter((e) => e.startsWith('promotion_rolled_back:'));
    expect(rollbacks.length).toBeGreaterThan(5);
  }, 60_000);

  for (const prefix of ['pone', 'pnomap'] as const) {
    it(`one instance takes every partition and ends like the unpartitioned run (${prefix === 'pone' ? 'mapped by the server' : 'no server mapping: inputs moved to their partition'})`, async () => {
      await using w = await startNatsWarden(nats.server.url, {
        config: { cooldownSeconds: Number(COOLDOWN), nats: { prefix, partitions: PARTITIONS } },
      });
      expect(w.adapters.partitions()).toEqual([0, 1, 2, 3, 4, 5]);
      const inputs = chaosStream(prefix, MODELS, SEED);
      await publishInputs(nats.client, inputs);
      await expectLikeClean(nats.client, prefix, clean, `seed ${SEED}`);
      // The policy lab reads the recorded history back: every input once, with its kind, wherever it sits.
      const { entries } = await readInputStream(
        parseConfig({ nats: { url: nats.server.url, prefix, partitions: PARTITIONS } }),
      );
      expect(entries.map((e) => [e.kind, JSON.parse(e.payload).event_id])).toEqual(
        inputs.map((i) => [i.subject.split('.')[2], i.payload.event_id]),
      );
      const stream = await nats.client.jsm.streams.info(`${prefix.toUpperCase()}_IN`, {
        subjects_filter: '>',
      });
      const subjects = Object.keys(stream.state.subjects ?? {});
      // Every input sits in its model's partition (moved there by Warden when the server did not map it).
      const placed = subjects.filter((s) => s.startsWith(`${prefix}.part.`));
      expect(placed.length).toBe(MODELS * 2);
      for (const subject of placed) {
        const [, , k, , model] = subject.split('.');
        expect(Number(k)).toBe(partitionOf(model!, PARTITIONS));
      }
      expect(subjects.length - placed.length).toBe(prefix === 'pone' ? 0 : MODELS * 2);
    }, 60_000);
  }

  it('three instances share the partitions; a SIGKILLed one is replaced once its leases expire; a joining one takes its share; one leaving hands its share over; nothing is lost or doubled', async () => {
    const prefix = 'pthree';
    const rnd = random(SEED + 5);
    const running = [warden(prefix), warden(prefix), warden(prefix)];
    const all = [...running];
    const holdings = () => running.map((c) => heldPartitions(c).held);
    try {
      await Promise.all(running.map((c) => c.line('READY')));
      // Each takes at most ceil(6 / 3) = 2, so all three take 2.
      await eventually(() => expect(holdings().map((h) => h.length)).toEqual([2, 2, 2]), {
        timeoutMs: 15_000,
      });
      const inputs = chaosStream(prefix, MODELS, SEED);
      const cut = Math.floor(inputs.length * (0.2 + 0.5 * rnd()));
      await publishInputs(nats.client, inputs.slice(0, cut));
      await new Promise((resolve) => setTimeout(resolve, Math.floor(rnd() * 300)));

      // A model command reaches whichever instance holds the model (forwarded by the one answering).
      for (let i = 0; i < 6; i++) {
        const reply = await nats.client.request<{ ok: boolean; error?: { code: string } }>(
          `${prefix}.cmd.approve.cm${i}`,
          { by: 'alice' },
        );
        expect(['no_pending_approval', 'unknown_model']).toContain(reply.error?.code);
      }

      const victim = running[Math.floor(rnd() * running.length)]!;
      const orphaned = heldPartitions(victim).held;
      expect(await victim.kill('SIGKILL')).toBe('SIGKILL');
      const killedAt = Date.now();
      running.splice(running.indexOf(victim), 1);
      const tookOver = await eventually(
        () => {
          const held = holdings().flat();
          expect([...held].sort()).toEqual([0, 1, 2, 3, 4, 5]);
          return Math.max(...running.map((c) => heldPartitions(c).at));
        },
        { timeoutMs: 15_000, intervalMs: 20 },
      );
      expect(orphaned).toHaveLength(2);
      // Taken over when the dead instance's leases expire (2 s), not at some later timeout. How soon is
      // measured by `npm run bench:failover` (target: under 3 s): a bound that tight here fails when the
      // machine is busy (4.8 s once, with the whole suite running), so this one is loose.
      expect(tookOver - killedAt).toBeLessThan(10_000);
      await publishInputs(nats.client, inputs.slice(cut));

      const joining = warden(prefix);
      running.push(joining);
      all.push(joining);
      await joining.line('READY');
      await eventually(() => expect(holdings().map((h) => h.length)).toEqual([2, 2, 2]), {
        timeoutMs: 15_000,
      });
      await expectLikeClean(nats.client, prefix, clean, `seed ${SEED}`, 60_000, all);

      // One leaves in order: its partitions go to the two others, and nothing changes.
      const leaving = running.shift()!;
      expect(await leaving.kill('SIGTERM')).toBe(0);
      await eventually(() => expect([...holdings().flat()].sort()).toEqual([0, 1, 2, 3, 4, 5]), {
        timeoutMs: 15_000,
      });
      await expectLikeClean(nats.client, prefix, clean, `seed ${SEED}`, 60_000, all);
      for (const child of all) expect(crashOutput(child.stderr())).not.toMatch(/Unhandled|TimeoutError/);
    } finally {
      for (const child of all) await child.kill('SIGKILL');
    }
  }, 120_000);

  it('with 6 SIGKILLs of random instances at random moments, three running, ends like the clean run', async () => {
    const prefix = 'pkill';
    const rnd = random(SEED + 6);
    const running = [warden(prefix), warden(prefix), warden(prefix)];
    const all = [...running];
    try {
      await Promise.all(running.map((c) => c.line('READY')));
      const inputs = chaosStream(prefix, MODELS, SEED);
      const size = Math.ceil(inputs.length / 8);
      for (let kill = 0; kill < 6; kill++) {
        await publishInputs(nats.client, inputs.slice(kill * size, (kill + 1) * size));
        await new Promise((resolve) => setTimeout(resolve, Math.floor(rnd() * 400)));
        // One that takes inputs now (a replacement may still be starting).
        const pick = rnd();
        const victim = await eventually(
          () => {
            const working = running.filter((c) => heldPartitions(c).held.length > 0);
            if (working.length === 0) throw new Error(`no instance holds a partition (kill ${kill})`);
            return working[Math.floor(pick * working.length)]!;
          },
          { timeoutMs: 15_000, intervalMs: 20 },
        );
        expect(await victim.kill('SIGKILL')).toBe('SIGKILL');
        running.splice(running.indexOf(victim), 1);
        const replacement = warden(prefix);
        running.push(replacement);
        all.push(replacement);
      }
      await publishInputs(nats.client, inputs.slice(6 * size));
      await expectLikeClean(nats.client, prefix, clean, `seed ${SEED}`, 60_000, all);
      for (const child of all) expect(crashOutput(child.stderr())).not.toMatch(/Unhandled|TimeoutError/);
    } finally {
      for (const child of all) await child.kill('SIGKILL');
    }
  }, 150_000);

  it("an approval's deadline moves with its model's partition: the instance taking it over lets it expire on time", async () => {
    const prefix = 'ptimer';
    const config = {
      cooldownSeconds: Number(COOLDOWN),
      approval: { requireForSevere: true, timeoutSeconds: 600, onTimeout: 'rollback' as const },
      nats: { prefix, partitions: PARTITIONS },
    };
    const start = Date.now();
    const first = await startNatsWarden(nats.server.url, { config, clock: new ManualClock(start) });
    const model = 'approved_later';
    const publish = (kind: string, body: object) =>
      nats.client.publish(`${prefix}.in.${kind}.${model}`, body);
    await publish('promotion', { event_id: 'p1', model_id: `${model}_v1`, elo: 1500 });
    await publish('promotion', { event_id: 'p2', model_id: `${model}_v2`, elo: 1520 });
    await publish('evaluation', {
      event_id: 'e1',
      model_id: `${model}_v2`,
      current_elo: 1460,
      games_played: 200,
    });
    await first.settled();
    expect(first.warden.status(model).models[0]!.state).toBe('awaitingApproval');
    // An orderly stop hands every partition over; the second instance (its clock 1 s short of the
    // deadline) takes them, with the model's pending approval.
    await first.stop();
    const clock = new ManualClock(start + 599_000);
    await using second = await startNatsWarden(nats.server.url, { config, clock });
    expect(second.adapters.partitions()).toHaveLength(PARTITIONS);
    await eventually(() => expect(second.warden.status(model).models[0]!.state).toBe('awaitingApproval'));
    clock.advance(500);
    await second.settled();
    expect(await nats.client.stored(`${prefix}.evt.promotion_rolled_back.${model}`, 'PTIMER_EVENTS')).toEqual(
      [],
    );
    clock.advance(1_000);
    await eventually(async () =>
      expect(
        await nats.client.stored(`${prefix}.evt.promotion_rolled_back.${model}`, 'PTIMER_EVENTS'),
      ).toHaveLength(1),
    );
    await second.settled();
    expect(await nats.client.kv(`${prefix}_registry`, model)).toMatchObject({ version: 'v1' });
  });
});
