import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNatsServer, type NatsServer } from '../harness/nats-server.ts';
import { connectClient, type TestClient } from '../harness/nats-client.ts';
import { spawnTs } from '../harness/child-process.ts';
import { eventually } from '../harness/eventually.ts';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

let server: NatsServer;
let client: TestClient;
let dataDir: string;

beforeAll(async () => {
  server = await startNatsServer();
  client = await connectClient(server.url);
  dataDir = await mkdtemp(join(tmpdir(), 'warden-service-'));
});

afterAll(async () => {
  await client?.close();
  await server?.[Symbol.asyncDispose]();
  await rm(dataDir, { recursive: true, force: true });
});

describe('npm start in NATS mode', () => {
  it('runs on WARDEN_NATS_URL alone, takes inputs and commands, and shuts down in order on SIGTERM', async () => {
    await using warden = spawnTs(MAIN, {
      WARDEN_NATS_URL: server.url,
      WARDEN_HTTP_PORT: '0',
      WARDEN_DATA_DIR: dataDir,
      WARDEN_LOG_LEVEL: 'info',
    });
    const running = await warden.line('Warden is running');
    expect(running).toContain(`NATS mode: ${server.url}`);

    await client.publish('warden.in.promotion.hex8_2p', { model_id: 'hex8_2p_v1', elo: 1500 });
    await eventually(async () =>
      expect(await client.request('warden.cmd.status')).toMatchObject({
        ok: true,
        models: [{ model_id: 'hex8_2p', production_version: 'v1' }],
      }),
    );
    expect(await warden.kill('SIGTERM')).toBe(0);
    expect(warden.stderr()).toBe('');
    // Nothing was left unacknowledged: the next instance starts from a clean slate.
    const consumer = await client.jsm.consumers.info('WARDEN_IN', 'warden_inputs');
    expect(consumer.num_ack_pending).toBe(0);
    expect(consumer.num_pending).toBe(0);
  });
});
