import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, type TestClient } from '../harness/nats-client.ts';
import { eventually } from '../harness/eventually.ts';
import { freePort } from '../harness/free-port.ts';
import { startNatsServer, type NatsServer } from '../harness/nats-server.ts';
import { alertOf, startReceiver } from '../alerts/receiver.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/**
 * The image's layout (/app/package.json, /app/dist, node_modules found above it), built here with the
 * project's build configuration: node_modules/.cache keeps it out of git and next to the dependencies.
 */
const APP = join(ROOT, 'node_modules', '.cache', `warden-image-${process.pid}`, 'app');
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const runtime = dockerfile.split(/^FROM /m).at(-1)!;
const NATS_CONF = join(ROOT, 'nats.conf');
const PASSWORDS = {
  WARDEN_NATS_PASSWORD: 'w-image-test',
  PRODUCER_NATS_PASSWORD: 'p-image-test',
  OPERATOR_NATS_PASSWORD: 'o-image-test',
  TRAINER_NATS_PASSWORD: 't-image-test',
};
const OPERATOR_TOKEN = 'image-test-operator-token';

/** The runtime stage's ENV, as Docker sets it. */
function imageEnv(): Record<string, string> {
  const block = runtime.match(/^ENV ((?:.*\\\n)*.*)$/m)![1]!;
  return Object.fromEntries(
    block
      .split(/\\\n/)
      .map((line) => line.trim())
      .filter((line) => line.length > 0)
      .map((line) => line.split('=') as [string, string]),
  );
}

const instruction = (name: string): string[] =>
  JSON.parse(runtime.match(new RegExp(`^${name} (\\[.*\\])$`, 'm'))![1]!) as string[];

let server: NatsServer;
let producer: TestClient;
let dataDir: string;

beforeAll(async () => {
  mkdirSync(APP, { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(APP, 'package.json'));
  await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      'tsconfig.build.json',
      '--outDir',
      join(APP, 'dist'),
    ],
    { cwd: ROOT },
  );
  server = await startNatsServer({ configFile: NATS_CONF, env: PASSWORDS });
  producer = await connectClient(server.url, { user: 'producer', pass: PASSWORDS.PRODUCER_NATS_PASSWORD });
  dataDir = mkdtempSync(join(tmpdir(), 'warden-image-'));
}, 120_000);

afterAll(async () => {
  await producer?.close();
  await server?.[Symbol.asyncDispose]();
  rmSync(join(APP, '..'), { recursive: true, force: true });
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("the image's start command, run as a process", { timeout: 60_000 }, () => {
  it('serves /readyz (the HEALTHCHECK passes), takes inputs from NATS, alerts, and stops in order on SIGTERM', async () => {
    const port = await freePort();
    const receiver = await startReceiver();
    const [command, ...args] = instruction('CMD');
    expect(command).toBe('node');
    const env = {
      PATH: process.env.PATH!,
      ...imageEnv(),
      // Docker's network namespace makes 0.0.0.0 private to the container; here it would not be.
      WARDEN_HTTP_HOST: '127.0.0.1',
      WARDEN_HTTP_PORT: String(port),
      WARDEN_DATA_DIR: dataDir,
      WARDEN_NATS_URL: `nats://warden:${PASSWORDS.WARDEN_NATS_PASSWORD}@127.0.0.1:${server.port}`,
      WARDEN_OPERATOR_TOKENS: OPERATOR_TOKEN,
      WARDEN_ALERT_WEBHOOK_URL: `${receiver.url}/slack`,
    };
    expect(imageEnv()).toMatchObject({
      NODE_ENV: 'production',
      WARDEN_DATA_DIR: '/data',
      WARDEN_HTTP_PORT: '8080',
    });
    const child: ChildProcess = spawn(process.execPath, args, {
      cwd: APP,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await eventually(() => expect(stdout, stderr).toContain('Warden is running'), { timeoutMs: 30_000 });
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready' });

      const [hcCommand, ...hcArgs] = healthcheck();
      expect(hcCommand).toBe('node');
      const probe = spawn(process.execPath, hcArgs, { env });
      expect(await new Promise((resolve) => probe.once('exit', resolve))).toBe(0);

      await producer.publish('warden.in.promotion.hex8_2p', { model_id: 'hex8_2p_v1', elo: 1500 });
      await producer.publish('warden.in.promotion.hex8_2p', { model_id: 'hex8_2p_v2', elo: 1520 });
      await producer.publish('warden.in.evaluation.hex8_2p', {
        model_id: 'hex8_2p_v2',
        current_elo: 1400,
        games_played: 200,
      });
      await eventually(async () => {
        const models = (await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json()) as {
          models: Array<{ production_version: string; state: string }>;
        };
        expect(models.models).toEqual([
          expect.objectContaining({ production_version: 'v1', state: 'cooldown' }),
        ]);
      });
      // The CLI as the image puts it on PATH (`exec node /app/dist/cli/bin.js "$@"`).
      const wrapper = runtime.match(/exec node \/app\/(dist\/cli\/bin\.js) "\$@"/)![1]!;
      const cli = (args: string[]) =>
        promisify(execFile)(process.execPath, [wrapper, ...args], {
          cwd: APP,
          env: { PATH: process.env.PATH!, WARDEN_URL: `http://127.0.0.1:${port}` },
        });
      expect((await cli(['--version'])).stdout).toBe('0.1.0\n');
      expect((await cli(['status'])).stdout).toMatch(/^MODEL\s+STATE\s+PRODUCTION/);
      // Alerts go out through nats.conf's grants (the warden_alerts bucket) to the webhook.
      await eventually(() =>
        expect(receiver.accepted('/slack').map((r) => alertOf(r).kind)).toEqual([
          'critical_regression',
          'rolled_back',
        ]),
      );
    } finally {
      child.kill('SIGTERM');
    }
    await receiver.close();
    expect(await exited, stderr).toBe(0);
    const messages = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
    const shutdown = messages.findIndex((m) => m.startsWith('shutting down'));
    expect(shutdown).toBeGreaterThan(-1);
    expect(messages.indexOf('Warden stopped')).toBeGreaterThan(shutdown);
    // The probe fails once the service is gone.
    const [, ...hcArgs] = healthcheck();
    const probe = spawn(process.execPath, hcArgs, {
      env: { PATH: process.env.PATH!, WARDEN_HTTP_PORT: String(port) },
    });
    expect(await new Promise((resolve) => probe.once('exit', resolve))).toBe(1);
  });
});

function healthcheck(): string[] {
  return JSON.parse(dockerfile.match(/^HEALTHCHECK .*\\\n\s+CMD (\[.*\])$/m)![1]!) as string[];
}
