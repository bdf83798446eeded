/**
 * `npm run bench:flood`: how promptly /healthz answers while Warden (NATS mode, the whole service) takes a
 * flood of bad inputs, beside the same figure at rest, in the same run. A real nats-server is spawned (as
 * the tests do); the prober and the publisher are child processes, so that neither competes with Warden's
 * event loop. Options: --inputs N (default 10000), --rounds R (default 3).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { parseConfig } from '../src/config/load.ts';
import { buildService } from '../src/service.ts';
import { startNatsServer } from '../test/harness/nats-server.ts';
import { option } from './options.ts';

const SELF = fileURLToPath(import.meta.url);
const PROBE_EVERY_MS = 5;

/** Child mode: probe a URL until SIGTERM, then print the latencies (ms) as JSON. */
async function probe(url: string): Promise<void> {
  const latencies: number[] = [];
  let stop = false;
  process.once('SIGTERM', () => (stop = true));
  process.stdout.write('PROBING\n');
  while (!stop) {
    const started = performance.now();
    const response = await fetch(url);
    await response.text();
    latencies.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, PROBE_EVERY_MS));
  }
  process.stdout.write(`${JSON.stringify(latencies)}\n`);
}

/** Child mode: publish `count` bad inputs of several sorts as fast as core NATS takes them. */
async function publish(url: string, count: number): Promise<void> {
  const nc = await connect({ servers: url });
  const sorts: Array<(i: number) => [string, string]> = [
    (i) => [`warden.in.evaluation.m${i % 50}`, 'games_played=100'],
    (i) => [`warden.in.evaluation.m${i % 50}`, JSON.stringify({ model_id: `m${i % 50}`, games_played: -1 })],
    (i) => [`warden.in.kind_${i}.m${i % 50}`, JSON.stringify({ model_id: 'x', games_played: 1 })],
    (i) => [`warden.in.promotion.m${i % 50}`, JSON.stringify({ model_id: 42, version: 'v1', elo: 1e300 })],
    (i) => [`warden.in.evaluation.m${i % 50}`, JSON.stringify({ model_id: `m${i % 50}`, games_played: 5 })],
  ];
  for (let i = 0; i < count; i++) {
    const [subject, payload] = sorts[i % sorts.length]!(i);
    nc.publish(subject, payload);
    if (i % 500 === 499) await nc.flush();
  }
  await nc.flush();
  await nc.close();
  process.stdout.write('PUBLISHED\n');
}

function child(args: string[]): {
  line(text: string): Promise<string>;
  stop(): Promise<string>;
} {
  const proc = spawn(process.execPath, ['--import', 'tsx', SELF, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const waiters: Array<() => void> = [];
  proc.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    line: (text) =>
      new Promise((resolve) => {
        const check = () => {
          const found = out.split('\n').find((l) => l.includes(text));
          if (found !== undefined) resolve(found);
          else waiters.push(check);
        };
        check();
      }),
    async stop() {
      proc.kill('SIGTERM');
      await exited;
      return out;
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(latencies: number[]): { p50: number; p99: number; max: number; n: number } {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1)!, n: sorted.length };
}

const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function main(): Promise<void> {
  const INPUTS = option('inputs', 10_000);
  const ROUNDS = option('rounds', 3);
  await using server = await startNatsServer();
  // Logs go somewhere real (as in production), only not to the terminal.
  const logger = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true }));
  const config = parseConfig({ nats: { url: server.url }, http: { port: 0, host: '127.0.0.1' } });
  const service = await buildService(config, { logger });
  const healthz = `${service.httpUrl}/healthz`;
  const nc = await connect({ servers: server.url });
  const jsm = await jetstreamManager(nc);

  const measure = async (during: () => Promise<void>) => {
    const prober = child(['--probe', healthz]);
    await prober.line('PROBING');
    await during();
    const out = await prober.stop();
    return JSON.parse(out.split('\n').find((l) => l.startsWith('['))!) as number[];
  };

  const rest: number[] = [];
  const flood: number[] = [];
  const rates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const atRest = summary(await measure(() => new Promise((resolve) => setTimeout(resolve, 2_000))));
    let seconds = 0;
    const during = summary(
      await measure(async () => {
        const started = performance.now();
        const publisher = child(['--publish', server.url, String(INPUTS)]);
        await publisher.line('PUBLISHED');
        await publisher.stop();
        // Until Warden has acknowledged every one of them.
        for (;;) {
          const stream = await jsm.streams.info('WARDEN_IN');
          const consumer = await jsm.consumers.info('WARDEN_IN', 'warden_inputs');
          if (consumer.ack_floor.stream_seq >= stream.state.last_seq) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        seconds = (performance.now() - started) / 1000;
      }),
    );
    rest.push(atRest.p99);
    flood.push(during.p99);
    rates.push(INPUTS / seconds);
    console.log(
      `round ${round + 1}: at rest p50 ${fmt(atRest.p50)} p99 ${fmt(atRest.p99)} max ${fmt(atRest.max)} (${atRest.n} probes) | ` +
        `flood of ${INPUTS} bad inputs p50 ${fmt(during.p50)} p99 ${fmt(during.p99)} max ${fmt(during.max)} (${during.n} probes, ${seconds.toFixed(1)} s, ${Math.round(INPUTS / seconds)} inputs/s)`,
    );
  }
  console.log(
    `\n/healthz p99, median of ${ROUNDS} rounds: at rest ${fmt(median(rest))} (${fmt(Math.min(...rest))}-${fmt(Math.max(...rest))}), ` +
      `during the flood ${fmt(median(flood))} (${fmt(Math.min(...flood))}-${fmt(Math.max(...flood))}); ` +
      `flood taken at ${Math.round(median(rates))} bad inputs/s; target p99 < 100 ms`,
  );
  await nc.close();
  await service.stop();
}

if (process.argv[2] === '--probe') await probe(process.argv[3]!);
else if (process.argv[2] === '--publish') await publish(process.argv[3]!, Number(process.argv[4]));
else await main();
