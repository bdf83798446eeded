import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, type NatsServer } from '../harness/nats-server.ts';
import { connectClient, type TestClient } from '../harness/nats-client.ts';
import { startNatsWarden, type NatsWarden } from '../harness/nats-warden.ts';
import { eventually } from '../harness/eventually.ts';
import { natsCredentials } from '../../src/cli/nats-client.ts';
import { runToEnd } from '../harness/child-process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NATS_CONF = fileURLToPath(new URL('../../nats.conf', import.meta.url));
const SPAWN_TIMEOUT_MS = 90_000;
const PASSWORDS = {
  WARDEN_NATS_PASSWORD: 'w-warden-secret',
  PRODUCER_NATS_PASSWORD: 'p-producer-secret',
  OPERATOR_NATS_PASSWORD: 'o-operator-secret',
  TRAINER_NATS_PASSWORD: 't-trainer-secret',
};

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The real executable, with only the environment a test gives it (plus PATH and HOME). */
function warden(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runToEnd(process.execPath, ['bin/warden.js', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_BY: 'alice', ...env },
  });
}

let server: NatsServer;
let service: NatsWarden;
let producer: TestClient;
let host: string;
const operatorUrl = () => `nats://operator:${PASSWORDS.OPERATOR_NATS_PASSWORD}@${host}`;

beforeAll(async () => {
  server = await startNatsServer({ configFile: NATS_CONF, env: PASSWORDS });
  host = `127.0.0.1:${server.port}`;
  service = await startNatsWarden(`nats://warden:${PASSWORDS.WARDEN_NATS_PASSWORD}@${host}`, {
    config: { approval: { requireForSevere: true } },
  });
  producer = await connectClient(`nats://${host}`, {
    user: 'producer',
    pass: PASSWORDS.PRODUCER_NATS_PASSWORD,
  });
  for (const model of ['hex8_2p', 'sq9_4p']) {
    await producer.publish(`warden.in.promotion.${model}`, { model_id: `${model}_v1`, elo: 1500 });
    await producer.publish(`warden.in.promotion.${model}`, { model_id: `${model}_v2`, elo: 1520 });
  }
  await producer.publish('warden.in.evaluation.hex8_2p', {
    model_id: 'hex8_2p_v2',
    current_elo: 1460,
    games_played: 200,
  });
  await service.settled();
  await eventually(() => expect(service.warden.status('hex8_2p').models[0]!.state).toBe('awaitingApproval'));
});

afterAll(async () => {
  await service?.stop();
  await producer?.close();
  await server?.[Symbol.asyncDispose]();
});

describe("the CLI over NATS with nats.conf's users", { timeout: SPAWN_TIMEOUT_MS }, () => {
  it('as the operator (credentials in the URL) runs every command', async () => {
    const nats = ['--nats', operatorUrl()];
    const status = await warden(['status', ...nats, '--json']);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).models.map((m: { state: string }) => m.state)).toEqual([
      'awaitingApproval',
      'healthy',
    ]);
    const detail = await warden(['status', 'hex8_2p', ...nats]);
    expect(detail.code).toBe(0);
    expect(detail.stdout).toMatch(/^pending approval:\s+severe -> v1/m);

    const rejected = await warden(['reject', 'hex8_2p', ...nats, '--note', 'looks fine']);
    expect(rejected.stdout).toMatch(/^reject hex8_2p: rejected; now healthy; recorded as by "alice"$/m);
    expect(rejected.code).toBe(0);

    const rollback = await warden(['rollback', 'sq9_4p', ...nats, '--reason', 'bad games']);
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(rollback.stdout).toMatch(/^rollback sq9_4p: rollback_started .*toVersion v1\)/m);
    await service.settled();

    const history = await warden(['history', ...nats, '--json']);
    expect(history.code).toBe(0);
    expect(JSON.parse(history.stdout).rollbacks).toEqual([
      expect.objectContaining({ model_id: 'sq9_4p', triggered_by: 'manual', by: 'alice' }),
    ]);

    const pause = await warden(['pause', 'hex8_2p', ...nats, '--reason', 'maintenance']);
    expect(pause.code, pause.stderr).toBe(0);
    expect(pause.stdout).toMatch(/^pause hex8_2p: paused/m);
    const resume = await warden(['resume', 'hex8_2p', ...nats]);
    expect(resume.code, resume.stderr).toBe(0);
    expect(resume.stdout).toMatch(/^resume hex8_2p: resumed/m);

    const approve = await warden(['approve', 'hex8_2p', ...nats, '--json']);
    expect(approve.code).toBe(4);
    expect(JSON.parse(approve.stdout).error.code).toBe('no_pending_approval');
  });

  it('takes --user/--password and the WARDEN_CLI_NATS_* variables instead of the URL', async () => {
    const flags = await warden([
      'status',
      '--nats',
      `nats://${host}`,
      '--user',
      'operator',
      '--password',
      PASSWORDS.OPERATOR_NATS_PASSWORD,
      '--json',
    ]);
    expect(flags.code, flags.stderr).toBe(0);
    const env = await warden(['status', '--json'], {
      WARDEN_CLI_NATS_URL: `nats://${host}`,
      WARDEN_CLI_NATS_USER: 'operator',
      WARDEN_CLI_NATS_PASSWORD: PASSWORDS.OPERATOR_NATS_PASSWORD,
    });
    expect(env.code, env.stderr).toBe(0);
    expect(JSON.parse(env.stdout).models).toHaveLength(2);
  });

  it('as the producer is refused (exit 6), and a wrong password says so without printing it', async () => {
    const producerUrl = `nats://producer:${PASSWORDS.PRODUCER_NATS_PASSWORD}@${host}`;
    const approve = await warden(['rollback', 'hex8_2p', '--nats', producerUrl, '--reason', 'x']);
    expect(approve.code).toBe(6);
    expect(approve.stderr).toMatch(/permission/i);
    const status = await warden(['status', '--nats', producerUrl]);
    expect(status.code).toBe(6);
    // Every other command too: none of them is the producer's to send.
    for (const command of [
      ['history'],
      ['approve', 'hex8_2p'],
      ['reject', 'hex8_2p'],
      ['pause', 'hex8_2p', '--reason', 'x'],
      ['resume', 'hex8_2p'],
    ]) {
      const run = await warden([...command, '--nats', producerUrl, '--json']);
      expect(run.code, command.join(' ')).toBe(6);
      expect(JSON.parse(run.stdout).error.code).toBe('forbidden');
    }

    const wrong = await warden(['status', '--nats', `nats://operator:not-the-password@${host}`]);
    expect(wrong.code).toBe(6);
    expect(wrong.stderr).toMatch(/Authorization Violation/i);
    expect(wrong.stderr).not.toContain('not-the-password');
    expect(wrong.stdout).toBe('');
  });

  it("ignores the service's WARDEN_NATS_URL: the CLI stays on HTTP unless told otherwise", async () => {
    const run = await warden(['status'], {
      WARDEN_NATS_URL: operatorUrl(),
      WARDEN_URL: 'http://127.0.0.1:9',
    });
    expect(run.code).toBe(5);
    expect(run.stderr).toContain('cannot reach Warden at http://127.0.0.1:9');
    expect(run.stderr).not.toContain(PASSWORDS.OPERATOR_NATS_PASSWORD);

    const both = await warden(['status'], { WARDEN_CLI_NATS_URL: operatorUrl(), WARDEN_URL: 'http://x' });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('expected WARDEN_URL or WARDEN_CLI_NATS_URL, received both');
    // A flag settles it.
    const chosen = await warden(['status', '--nats', operatorUrl(), '--json'], { WARDEN_URL: 'http://x' });
    expect(chosen.code, chosen.stderr).toBe(0);
  });

  it('status --watch renders again when something changed, and stops at Ctrl-C with exit 0', async () => {
    const child = spawn(
      process.execPath,
      ['bin/warden.js', 'status', 'hex8_2p', '--watch', '--interval', '0.2', '--nats', operatorUrl()],
      { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME } },
    );
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await eventually(() => expect(stdout).toMatch(/^state:\s+healthy$/m), { timeoutMs: 20_000 });
      const rendersBefore = stdout.match(/Ctrl-C stops/g)!.length;
      expect(rendersBefore).toBe(1);
      await producer.publish('warden.in.promotion.hex8_2p', { model_id: 'hex8_2p_v3', elo: 1530 });
      await eventually(() => expect(stdout).toMatch(/^production:\s+v3$/m), { timeoutMs: 20_000 });
      expect(stdout.match(/Ctrl-C stops/g)!.length).toBe(2);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
});

describe('NATS credentials for the CLI', () => {
  it('come from the URL unless given on their own; two kinds at once are a usage error', () => {
    expect(natsCredentials('nats://op:p%40ss@h:4222,h2', {})).toEqual({
      servers: ['h:4222', 'h2:4222'],
      auth: { kind: 'user', user: 'op', pass: 'p@ss' },
    });
    expect(natsCredentials('nats://tok@h', {}).auth).toEqual({ kind: 'token', token: 'tok' });
    expect(natsCredentials('nats://op:x@h', { user: 'u', password: 'p' }).auth).toEqual({
      kind: 'user',
      user: 'u',
      pass: 'p',
    });
    expect(natsCredentials('nats://op:x@h', { credsFile: '/c' }).auth).toEqual({ kind: 'creds', file: '/c' });
    expect(() => natsCredentials('nats://h', { token: 't', credsFile: '/c' })).toThrow(
      'expected one kind of NATS credentials, received --nats-token and --nats-creds',
    );
    expect(() => natsCredentials('nats://h', { user: 'u' })).toThrow(
      'expected --user and --password together',
    );
    expect(() => natsCredentials('nats://a b:secret@', {})).toThrow(/received something that is not a URL/);
    expect(() => natsCredentials('nats://a b:secret@', {})).not.toThrow(/secret/);
  });
});
