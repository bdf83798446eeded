import { beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { spawnTs, type Child } from '../harness/child-process.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import {
  chaosStream,
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
/** Printed with every failure: CHAOS_SEED=<seed> replays the same stream, outage and moments. */
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 1_000_000));
/**
 * NATS is away for 5 to 8 s, longer than the 2 s lease TTL; CHAOS_OUTAGE_MS=<ms> sets a longer one, up to
 * about 35 s within each case's time limit (lease, partitions and stores across a reconnection that takes
 * longer than their deadlines).
 */
const OUTAGE_MS = process.env.CHAOS_OUTAGE_MS === undefined ? null : Number(process.env.CHAOS_OUTAGE_MS);
const outageMs = (rnd: () => number): number => {
  const ms = 5_000 + Math.floor(rnd() * 3_000); // drawn either way: the seed's later moments stay the same
  return OUTAGE_MS ?? ms;
};
const COOLDOWN = '3600';
/** How NATS goes away: stopped (SIGTERM), killed (SIGKILL), or frozen (SIGSTOP, then SIGCONT). */
const MODES = ['stop', 'kill', 'freeze'] as const;
type Mode = (typeof MODES)[number];

const nats = useSharedNats({ partitions: { pout: PARTITIONS, poutrb: PARTITIONS } });
let clean: RunOutcome;
let cleanRegistry: Record<string, unknown>;

function warden(prefix: string, env: Record<string, string> = {}): Child {
  return spawnTs(FIXTURE, {
    WARDEN_NATS_URL: nats.server.url,
    WARDEN_NATS_PREFIX: prefix,
    WARDEN_NATS_PARTITIONS: String(PARTITIONS),
    WARDEN_COOLDOWN_SECONDS: COOLDOWN,
    // Idle actors leave memory after a second (300 s by default): the faults meet passivated actors too.
    WARDEN_PASSIVATE_AFTER_SECONDS: '1',
    WARDEN_LOG_LEVEL: 'warn',
    WARDEN_TEST_TRACE: '1',
    ...env,
  });
}

/** Every model's production pointer in the registry (what a serving system reads). */
async function registry(prefix: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const model of Object.keys(clean.models)) {
    const e = await nats.client.kv<{ version: string; rollback_id: string | null }>(
      `${prefix}_registry`,
      model,
    );
    out[model] = e && [e.version, e.rollback_id];
  }
  return out;
}

/** NATS goes away for `ms` (longer than the 2 s lease TTL), then comes back on its port with its store. */
async function outage(mode: Mode, ms: number, meanwhile: () => Promise<void>): Promise<void> {
  const started = Date.now();
  if (mode === 'freeze') nats.server.signal('SIGSTOP');
  else if (mode === 'kill') await nats.server.kill();
  else await nats.server.stop();
  try {
    await meanwhile();
    // The fault's length itself, not a wait for something to happen.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms - (Date.now() - started))));
  } finally {
    if (mode === 'freeze') nats.server.signal('SIGCONT');
    else await nats.server.start();
  }
}

/** Ends like the clean run: states, events, registry pointers; all partitions held; no process crashed. */
async function expectRecovered(
  prefix: string,
  label: string,
  running: readonly Child[],
  all: readonly Child[],
): Promise<void> {
  await expectLikeClean(nats.client, prefix, clean, label, 30_000, all);
  await eventually(async () => expect(await registry(prefix), label).toEqual(cleanRegistry), {
    timeoutMs: 10_000,
    intervalMs: 500,
  });
  await eventually(
    () =>
      expect([...running.flatMap((c) => heldPartitions(c).held)].sort(), label).toEqual([0, 1, 2, 3, 4, 5]),
    {
      timeoutMs: 10_000,
    },
  );
  // Each actor's events are in the stream in the order its commits made them (`<key>.e<n>`), whichever
  // instance published them: a training config takes its rollbacks' pauses in order.
  const order: Record<string, number[]> = {};
  for (const e of await nats.client.stored(`${prefix}.evt.>`, `${prefix.toUpperCase()}_EVENTS`)) {
    const found = /^(.+)\.e(\d+)$/.exec((e.data as { event_id?: string }).event_id ?? '');
    if (found) (order[found[1]!] ??= []).push(Number(found[2]));
  }
  for (const [key, numbers] of Object.entries(order))
    expect(numbers, `${label}: events of ${key}`).toEqual([...numbers].sort((a, b) => a - b));
  for (const child of running) expect(child.process.exitCode, label).toBeNull();
  // Timeouts and disconnections while NATS is away are logged (pino lines); an unhandled rejection, an
  // uncaught exception or a crash is not a log line.
  for (const child of all) {
    const foreign = child
      .stderr()
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('{"level":'));
    expect(foreign, label).toEqual([]);
    expect(child.stderr(), label).not.toMatch(/Unhandled|uncaught/i);
  }
}

describe(`NATS outage with input partitions (seed ${SEED})`, () => {
  beforeAll(async () => {
    // The clean run: one instance, one partition, no faults.
    const prefix = 'pclean';
    await using w = await startNatsWarden(nats.server.url, {
      config: { cooldownSeconds: Number(COOLDOWN), nats: { prefix } },
    });
    await publishInputs(nats.client, chaosStream(prefix, MODELS, SEED));
    await w.settled();
    clean = await runOutcome(nats.client, prefix);
    cleanRegistry = await registry(prefix);
    expect(Object.keys(clean.models)).toHaveLength(MODELS);
  }, 60_000);

  it('three instances, NATS away for 5-8 s with inputs in flight: ends like the clean run, every partition held again', async () => {
    const prefix = 'pout';
    const rnd = random(SEED + 21);
    const mode = MODES[Math.floor(rnd() * MODES.length)]!;
    const ms = outageMs(rnd);
    const label = `seed ${SEED} (NATS ${mode} for ${ms} ms)`;
    const running = [warden(prefix), warden(prefix), warden(prefix)];
    try {
      await Promise.all(running.map((c) => c.line('READY')));
      await eventually(() => expect(running.map((c) => heldPartitions(c).held.length)).toEqual([2, 2, 2]), {
        timeoutMs: 15_000,
      });
      const inputs = chaosStream(prefix, MODELS, SEED);
      const cut = Math.floor(inputs.length * (0.2 + 0.5 * rnd()));
      await publishInputs(nats.client, inputs.slice(0, cut));
      // The instances are still working through what was just published when NATS goes.
      await new Promise((resolve) => setTimeout(resolve, Math.floor(rnd() * 200)));
      await outage(mode, ms, async () => undefined);
      await publishInputs(nats.client, inputs.slice(cut));
      await expectRecovered(prefix, label, running, running);
    } finally {
      for (const child of running) await child.kill('SIGKILL');
    }
  }, 120_000);

  it('NATS goes away while a rollback is in flight, and one instance is SIGKILLed meanwhile: the two others end like the clean run', async () => {
    const prefix = 'poutrb';
    const rnd = random(SEED + 22);
    const mode = MODES[Math.floor(rnd() * MODES.length)]!;
    const ms = outageMs(rnd);
    // Every registry rollback waits 1 s before it reaches the registry: the outage begins within it.
    const env = { WARDEN_TEST_ROLLBACK_DELAY_MS: '1000' };
    const running = [warden(prefix, env), warden(prefix, env), warden(prefix, env)];
    const all = [...running];
    const rollbacks = () =>
      all.flatMap((c) =>
        c
          .stdout()
          .split('\n')
          .filter((l) => l.startsWith('ROLLBACK ')),
      );
    let label = `seed ${SEED} (NATS ${mode} for ${ms} ms)`;
    try {
      await Promise.all(running.map((c) => c.line('READY')));
      await eventually(() => expect(running.map((c) => heldPartitions(c).held.length)).toEqual([2, 2, 2]), {
        timeoutMs: 15_000,
      });
      const inputs = chaosStream(prefix, MODELS, SEED);
      let cut = Math.floor(inputs.length * (0.2 + 0.4 * rnd()));
      await publishInputs(nats.client, inputs.slice(0, cut));
      // One input at a time from there, until an instance starts a rollback.
      const before = rollbacks().length;
      while (cut < inputs.length && rollbacks().length === before) {
        await publishInputs(nats.client, [inputs[cut++]!]);
        await eventually(() => expect(rollbacks().length).toBeGreaterThan(before), {
          timeoutMs: 100,
          intervalMs: 10,
        }).catch(() => undefined);
      }
      const inFlight = rollbacks().at(-1);
      expect(inFlight, label).toBeDefined();
      label += `, ${inFlight} in flight after input ${cut}`;
      await outage(mode, ms, async () => {
        await new Promise((resolve) => setTimeout(resolve, Math.floor(ms * (0.2 + 0.5 * rnd()))));
        const victim = running[Math.floor(rnd() * running.length)]!;
        expect(await victim.kill('SIGKILL')).toBe('SIGKILL');
        running.splice(running.indexOf(victim), 1);
      });
      await publishInputs(nats.client, inputs.slice(cut));
      await expectRecovered(prefix, label, running, all);
    } finally {
      for (const child of all) await child.kill('SIGKILL');
    }
  }, 120_000);
});
