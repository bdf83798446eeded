import { beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { spawnTs, type Child } from '../harness/child-process.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import {
  chaosStream,
  crashOutput,
  expectLikeClean,
  publishInputs,
  random,
  runOutcome,
  type RunOutcome,
} from './chaos-stream.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/warden-process.ts', import.meta.url));
const MODELS = 100;
/** Printed with every failure: CHAOS_SEED=<seed> replays the same stream and the same fault moments. */
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 1_000_000));
const COOLDOWN = '3600';

const nats = useSharedNats();
let clean: RunOutcome;

function warden(prefix: string): Child {
  return spawnTs(FIXTURE, {
    WARDEN_NATS_URL: nats.server.url,
    WARDEN_NATS_PREFIX: prefix,
    WARDEN_COOLDOWN_SECONDS: COOLDOWN,
    // Idle actors leave memory after a second (300 s by default): the faults meet passivated actors too.
    WARDEN_PASSIVATE_AFTER_SECONDS: '1',
    WARDEN_LOG_LEVEL: 'warn',
    WARDEN_TEST_TRACE: '1',
  });
}

/** The last role a traced Warden process reported, with its time. */
function role(child: Child): { role: string; at: number } | null {
  const lines = child
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('ROLE '));
  const last = lines.at(-1);
  if (!last) return null;
  const [, name, at] = last.split(' ');
  return { role: name!, at: Number(at) };
}

function chunks<T>(items: readonly T[], count: number): T[][] {
  const size = Math.ceil(items.length / count);
  return Array.from({ length: count }, (_, i) => items.slice(i * size, (i + 1) * size));
}

describe(`NATS mode under faults ends like a clean run (seed ${SEED})`, () => {
  beforeAll(async () => {
    // The clean run: the same stream, one instance in this process, no faults.
    const prefix = 'clean';
    await using w = await startNatsWarden(nats.server.url, {
      config: { cooldownSeconds: Number(COOLDOWN), nats: { prefix } },
    });
    await publishInputs(nats.client, chaosStream(prefix, MODELS, SEED));
    await w.settled();
    clean = await runOutcome(nats.client, prefix);
    const rollbacks = Object.values(clean.events)
      .flat()
      .filter((e) => e.startsWith('promotion_rolled_back:'));
    expect(rollbacks.length).toBeGreaterThan(10);
  }, 60_000);

  it('with 10 SIGKILLs of the active instance at random moments', async () => {
    const prefix = 'killloop';
    const rnd = random(SEED + 1);
    const running = [warden(prefix), warden(prefix)];
    const all = [...running];
    try {
      await Promise.all(running.map((c) => c.line('READY')));
      const parts = chunks(chaosStream(prefix, MODELS, SEED), 12);
      for (let kill = 0; kill < 10; kill++) {
        await publishInputs(nats.client, parts[kill]!);
        await new Promise((resolve) => setTimeout(resolve, Math.floor(rnd() * 300)));
        const active = await eventually(
          () => {
            const found = running.find((c) => role(c)?.role === 'active');
            if (!found)
              throw new Error(
                `no active instance yet (kill ${kill}): ${running
                  .map(
                    (c) =>
                      `[${c
                        .stdout()
                        .split('\n')
                        .filter((l) => l.startsWith('ROLE') || l.startsWith('READY'))
                        .join(' | ')} ERR ${c.stderr().slice(-1500)}]`,
                  )
                  .join('\n')}`,
              );
            return found;
          },
          { timeoutMs: 15_000, intervalMs: 20 },
        );
        expect(await active.kill('SIGKILL')).toBe('SIGKILL');
        running.splice(running.indexOf(active), 1);
        const replacement = warden(prefix);
        running.push(replacement);
        all.push(replacement);
      }
      await publishInputs(nats.client, parts.slice(10).flat());
      await expectLikeClean(nats.client, prefix, clean, `seed ${SEED}`, 60_000, all);
      for (const child of all) expect(crashOutput(child.stderr())).not.toMatch(/Unhandled|TimeoutError/);
    } finally {
      for (const child of all) await child.kill('SIGKILL');
    }
  }, 150_000);

  it('with the active instance frozen (SIGSTOP) for longer than its lease, then thawed', async () => {
    const prefix = 'stopcont';
    const rnd = random(SEED + 2);
    const a = warden(prefix);
    const b = warden(prefix);
    try {
      await Promise.all([a.line('READY'), b.line('READY')]);
      const [active, standby] = await eventually(() => {
        if (role(a)?.role === 'active') return [a, b];
        if (role(b)?.role === 'active') return [b, a];
        throw new Error('no active instance yet');
      });
      const inputs = chaosStream(prefix, MODELS, SEED);
      const cut = Math.floor(inputs.length * (0.2 + 0.5 * rnd()));
      await publishInputs(nats.client, inputs.slice(0, cut));
      active.signal('SIGSTOP');
      const tookOver = await eventually(
        () => {
          const r = role(standby);
          if (r?.role !== 'active') throw new Error('the standby has not taken over');
          return r.at;
        },
        { timeoutMs: 10_000, intervalMs: 20 },
      );
      await publishInputs(nats.client, inputs.slice(cut));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      active.signal('SIGCONT');
      await expectLikeClean(nats.client, prefix, clean, `seed ${SEED}`, 60_000, [a, b]);
      // The frozen instance is alive, and applied no input after the other one took the lease.
      expect(active.process.exitCode).toBeNull();
      const late = active
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('APPLIED ') && Number(l.split(' ')[3]) >= tookOver);
      expect(late).toEqual([]);
      for (const child of [a, b]) expect(crashOutput(child.stderr())).not.toMatch(/Unhandled|TimeoutError/);
    } finally {
      a.signal('SIGCONT');
      await a.kill('SIGKILL');
      await b.kill('SIGKILL');
    }
  }, 120_000);

  it('with nats-server killed (SIGKILL) and restarted from its store under load', async () => {
    const prefix = 'natskill';
    const rnd = random(SEED + 3);
    await using w = await startNatsWarden(nats.server.url, {
      config: { cooldownSeconds: Number(COOLDOWN), nats: { prefix } },
    });
    const inputs = chaosStream(prefix, MODELS, SEED);
    const cut = Math.floor(inputs.length * (0.3 + 0.4 * rnd()));
    await publishInputs(nats.client, inputs.slice(0, cut));
    // Warden is still working through the backlog when the server dies.
    await nats.server.kill();
    await nats.server.start();
    await publishInputs(nats.client, inputs.slice(cut));
    await expectLikeClean(nats.client, prefix, clean, `seed ${SEED}`);
    expect(w.adapters.ready()).toBe(true);
  }, 120_000);
});
