/**
 * `npm run bench:failover`: what a fault costs in time in NATS mode, medians over several runs, with a
 * real nats-server and Warden processes (the crash tests' fixture, with the production lease of 2 s and
 * the production ack wait of 30 s):
 * - failover: two instances; the one taking the inputs is killed with SIGKILL; the time until the other
 *   has applied an input published right after the kill;
 * - partitions: three instances sharing six input partitions; one of them is killed with SIGKILL; the
 *   time until the two others hold every partition again (each instance says when its partitions change);
 * - resumption: one instance; nats-server is stopped and started again; the time from the server being
 *   ready until an input published then is applied;
 * - anchor, same run: the time to apply an input with nothing wrong (publish to applied).
 * Options: --runs N (default 5), --models M (default 1: the failover's instances hold M models, each
 * promoted once before the first kill, so that a take-over has that many actors to claim).
 */
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { spawnTs, type Child } from '../test/harness/child-process.ts';
import { startNatsServer, type NatsServer } from '../test/harness/nats-server.ts';
import { option } from './options.ts';

const FIXTURE = fileURLToPath(new URL('../test/nats/fixtures/warden-process.ts', import.meta.url));

const RUNS = option('runs', 5);
const MODELS = option('models', 1);

const PARTITIONS = 6;

function warden(server: NatsServer, prefix: string, env: Record<string, string> = {}): Child {
  return spawnTs(FIXTURE, {
    WARDEN_NATS_URL: server.url,
    WARDEN_NATS_PREFIX: prefix,
    WARDEN_LOG_LEVEL: 'warn',
    WARDEN_TEST_TRACE: '1',
    WARDEN_TEST_ACK_WAIT_MS: '30000',
    ...env,
  });
}

/** The input partitions an instance last said it takes (its `PARTITIONS` lines). */
const heldBy = (child: Child): number[] => {
  const list = child
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('PARTITIONS '))
    .at(-1)
    ?.split(' ')[1];
  return !list || list === '-' ? [] : list.split(',').map(Number);
};

const lastRole = (child: Child): string | undefined =>
  child
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('ROLE '))
    .at(-1)
    ?.split(' ')[1];

/** Resolves with the wall-clock time at which one of `children` applied stream sequence `seq`. */
async function appliedAt(children: Child[], model: string, seq: number, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    for (const child of children) {
      const line = child
        .stdout()
        .split('\n')
        .find((l) => l.startsWith(`APPLIED ${model} ${seq} `));
      if (line) return Date.now();
    }
    if (Date.now() - started > timeoutMs) throw new Error(`input ${seq} of ${model} was never applied`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function until(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

let n = 0;
/** Publishes a promotion, retrying while NATS is away; returns its stream sequence. */
async function promote(js: JetStreamClient, prefix: string, model: string): Promise<number> {
  n++;
  for (;;) {
    try {
      const ack = await js.publish(
        `${prefix}.in.promotion.${model}`,
        JSON.stringify({ event_id: `b${n}`, model_id: `${model}_v${n}`, elo: 1500 }),
        { msgID: `b${n}`, timeout: 1_000 },
      );
      return ack.seq;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const range = (values: number[]) =>
  `median ${median(values).toFixed(0)} ms (${Math.min(...values).toFixed(0)}-${Math.max(...values).toFixed(0)} ms, ${values.length} runs)`;

async function main(): Promise<void> {
  await using server = await startNatsServer({ partitions: { pt: PARTITIONS } });
  const nc: NatsConnection = await connect({
    servers: server.url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 50,
  });
  const js = jetstream(nc);
  const anchor: number[] = [];
  const failover: number[] = [];
  const takeover: number[] = [];
  const resumption: number[] = [];
  const partitionsTakeover: number[] = [];

  // Failover after SIGKILL.
  let children = [warden(server, 'fo'), warden(server, 'fo')];
  await Promise.all(children.map((c) => c.line('READY')));
  if (MODELS > 1) {
    // The other models, promoted once each; then a moment for the standby to follow them all.
    let last = { model: '', seq: 0 };
    for (let i = 0; i < MODELS - 1; i += 1_000) {
      const batch: Array<Promise<{ model: string; seq: number }>> = [];
      for (let j = i; j < Math.min(i + 1_000, MODELS - 1); j++)
        batch.push(promote(js, 'fo', `x${j}`).then((seq) => ({ model: `x${j}`, seq })));
      for (const p of await Promise.all(batch)) if (p.seq > last.seq) last = p;
    }
    // The last one applied (the other lanes by then or within the pause that follows).
    await appliedAt(children, last.model, last.seq, 300_000);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
  for (let run = 0; run < RUNS; run++) {
    await until(() => children.some((c) => lastRole(c) === 'active'));
    const t0 = Date.now();
    const seq0 = await promote(js, 'fo', 'm');
    anchor.push((await appliedAt(children, 'm', seq0)) - t0);
    const active = children.find((c) => lastRole(c) === 'active')!;
    const standby = children.find((c) => c !== active)!;
    const killedAt = Date.now();
    await active.kill('SIGKILL');
    const seq = await promote(js, 'fo', 'm');
    await until(() => lastRole(standby) === 'active');
    takeover.push(Date.now() - killedAt);
    failover.push((await appliedAt([standby], 'm', seq)) - killedAt);
    const replacement = warden(server, 'fo');
    await replacement.line('READY');
    children = [standby, replacement];
  }
  for (const child of children) await child.kill('SIGKILL');

  // Partitions taken over after SIGKILL of one of three instances.
  const partitioned = () => warden(server, 'pt', { WARDEN_NATS_PARTITIONS: String(PARTITIONS) });
  let three = [partitioned(), partitioned(), partitioned()];
  await Promise.all(three.map((c) => c.line('READY')));
  const share = Math.ceil(PARTITIONS / 3);
  for (let run = 0; run < RUNS; run++) {
    await until(() => three.every((c) => heldBy(c).length === share));
    const victim = three[run % three.length]!;
    const survivors = three.filter((c) => c !== victim);
    const killedAt = Date.now();
    await victim.kill('SIGKILL');
    await until(() => new Set(survivors.flatMap(heldBy)).size === PARTITIONS);
    partitionsTakeover.push(Date.now() - killedAt);
    const replacement = partitioned();
    await replacement.line('READY');
    three = [...survivors, replacement];
  }
  for (const child of three) await child.kill('SIGKILL');

  // Resumption after a NATS restart.
  const single = warden(server, 'rs');
  await single.line('READY');
  for (let run = 0; run < RUNS; run++) {
    await until(() => lastRole(single) === 'active');
    await appliedAt([single], 'r', await promote(js, 'rs', 'r'));
    await server.stop();
    await server.start();
    const ready = Date.now();
    // A fresh connection publishes at once (a reconnecting client would measure its own back-off).
    const fresh = await connect({ servers: server.url, waitOnFirstConnect: true, reconnectTimeWait: 20 });
    const seq = await promote(jetstream(fresh), 'rs', 'r');
    await fresh.close();
    resumption.push((await appliedAt([single], 'r', seq)) - ready);
  }
  await single.kill('SIGKILL');
  await nc.close();

  console.log(`failover with ${MODELS} model${MODELS === 1 ? '' : 's'} held by the instances`);
  console.log(`anchor, an input applied with nothing wrong: ${range(anchor)}`);
  console.log(
    `failover after SIGKILL of the active instance, until the standby holds the lease: ${range(takeover)}`,
  );
  console.log(
    `failover after SIGKILL of the active instance, until an input published after the kill is applied: ${range(failover)}`,
  );
  console.log(
    `partitions after SIGKILL of one of three instances, until the two others hold all ${PARTITIONS}: ${range(partitionsTakeover)}`,
  );
  console.log(
    `resumption after a nats-server restart, from the server ready until an input is applied: ${range(resumption)}`,
  );
  console.log('targets: failover and partitions < 3000 ms, resumption < 1000 ms');
}

await main();
