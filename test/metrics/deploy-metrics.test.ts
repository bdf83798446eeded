import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/logger.ts';
import { buildService, type Service } from '../../src/service.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsServer } from '../harness/nats-server.ts';
import {
  PRODUCER_TOKEN,
  parseMetrics,
  promoteTwo,
  startTestService,
  type TestService,
} from '../http/support.ts';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function scrape(url: string): Promise<Map<string, number>> {
  const reply = await fetch(`${url}/metrics`);
  expect(reply.status).toBe(200);
  return parseMetrics(await reply.text());
}

async function service(config: Parameters<typeof startTestService>[0]): Promise<TestService> {
  const t = await startTestService(config);
  closers.push(() => t.close());
  return t;
}

const evaluate = (t: TestService, model: string) =>
  t.api('POST', '/v1/evaluations', { model_id: model, current_elo: 1520, games_played: 100 }, PRODUCER_TOKEN);

describe('metrics for deployments', () => {
  it('has the process and Node.js defaults and a build info; no NATS gauges in embedded mode', async () => {
    const t = await service({});
    const samples = await scrape(t.url);
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
    ])
      expect(samples.has(name), name).toBe(true);
    expect(samples.get(`warden_build_info{version="0.1.0",node="${process.version}"}`)).toBe(1);
    expect(
      [...samples.keys()].filter((k) => k.startsWith('warden_nats_') || k.startsWith('warden_input_lease')),
    ).toEqual([]);
  });

  it('tells when each model was last evaluated, on the service clock, stalest first up to the limit', async () => {
    const t = await service({ metrics: { maxModelSeries: 2 } });
    for (const model of ['a', 'b', 'c']) await promoteTwo(t, model);
    const empty = await scrape(t.url);
    expect([...empty.keys()].filter((k) => k.startsWith('warden_last_evaluation'))).toEqual([]);
    const start = t.clock.now() / 1000;
    await evaluate(t, 'a');
    t.clock.advance(60_000);
    await evaluate(t, 'b');
    t.clock.advance(60_000);
    await evaluate(t, 'c');
    let samples = await scrape(t.url);
    expect(
      [...samples]
        .filter(([k]) => k.startsWith('warden_last_evaluation'))
        .sort(([a], [b]) => a.localeCompare(b)),
    ).toEqual([
      ['warden_last_evaluation_oldest_timestamp_seconds', start],
      ['warden_last_evaluation_timestamp_seconds{model_id="a"}', start],
      ['warden_last_evaluation_timestamp_seconds{model_id="b"}', start + 60],
    ]);
    // a is evaluated again: now b and c are the stalest.
    t.clock.advance(60_000);
    await evaluate(t, 'a');
    samples = await scrape(t.url);
    expect(samples.has('warden_last_evaluation_timestamp_seconds{model_id="a"}')).toBe(false);
    expect(samples.get('warden_last_evaluation_timestamp_seconds{model_id="c"}')).toBe(start + 120);
    expect(samples.get('warden_last_evaluation_oldest_timestamp_seconds')).toBe(start + 60);
  });

  it('maxModelSeries 0 keeps one series whatever the number of models', async () => {
    const t = await service({ metrics: { maxModelSeries: 0 } });
    for (const model of ['a', 'b']) {
      await promoteTwo(t, model);
      await evaluate(t, model);
    }
    const names = [...(await scrape(t.url)).keys()].filter((k) => k.startsWith('warden_last_evaluation'));
    expect(names).toEqual(['warden_last_evaluation_oldest_timestamp_seconds']);
  });

  it('NATS mode: the connection and which instance holds the input lease', { timeout: 60_000 }, async () => {
    const server = await startNatsServer();
    closers.push(async () => server[Symbol.asyncDispose]());
    const start = async (): Promise<Service> => {
      const dataDir = mkdtempSync(join(tmpdir(), 'warden-metrics-'));
      const s = await buildService(parseConfig({ dataDir, http: { port: 0 }, nats: { url: server.url } }), {
        logger: silentLogger,
      });
      closers.push(async () => {
        await s.stop();
        rmSync(dataDir, { recursive: true, force: true });
      });
      return s;
    };
    const first = await start();
    await eventually(async () => {
      const samples = await scrape(first.httpUrl!);
      expect(samples.get('warden_nats_connected')).toBe(1);
      expect(samples.get('warden_input_lease_held')).toBe(1);
    });
    const second = await start();
    const standby = await scrape(second.httpUrl!);
    expect(standby.get('warden_nats_connected')).toBe(1);
    expect(standby.get('warden_input_lease_held')).toBe(0);

    await server.stop();
    await eventually(async () => expect((await scrape(first.httpUrl!)).get('warden_nats_connected')).toBe(0));
    await server.start();
    await eventually(
      async () => expect((await scrape(first.httpUrl!)).get('warden_nats_connected')).toBe(1),
      {
        timeoutMs: 20_000,
      },
    );
  });
});
