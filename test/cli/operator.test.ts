import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OPERATOR_TOKEN,
  PRODUCER_TOKEN,
  promoteTwo,
  startTestService,
  type TestService,
} from '../http/support.ts';
import { runToEnd } from '../harness/child-process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Each test spawns a few CLI processes (tsx start-up is most of it); a loaded machine needs headroom. */
const SPAWN_TIMEOUT_MS = 60_000;
const operatorId = `operator:${createHash('sha256').update(OPERATOR_TOKEN).digest('hex').slice(0, 6)}`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without the caller's WARDEN_* settings, so only what a test passes applies. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1' };
  return { ...env, ...extra };
}

/**
 * The real executable as a separate process (`node bin/warden.js ...`). Asynchronous on purpose: the
 * Warden it talks to runs in this process and must keep answering.
 */
function warden(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runToEnd(process.execPath, ['bin/warden.js', ...args], { cwd: ROOT, env: cleanEnv(env) });
}

/** A port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let t: TestService;
let api: Record<string, string>;
const operator = () => ({ ...api, WARDEN_TOKEN: OPERATOR_TOKEN, WARDEN_BY: 'alice' });

beforeAll(async () => {
  t = await startTestService({ approval: { requireForSevere: true } });
  api = { WARDEN_URL: t.url };
  // Two models: one waiting for approval, one healthy.
  await promoteTwo(t, 'hex8_2p');
  await promoteTwo(t, 'sq9_4p');
  await t.api(
    'POST',
    '/v1/evaluations',
    { model_id: 'hex8_2p', current_elo: 1460, games_played: 100 },
    PRODUCER_TOKEN,
  );
  await t.service.warden.idle();
});
afterAll(async () => {
  await t.close();
});

describe('cli: reading', { timeout: SPAWN_TIMEOUT_MS }, () => {
  it('status prints a table of models and exits 0; --json prints what the API says', async () => {
    const table = await warden(['status'], api);
    expect(table.code).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toMatch(
      /^MODEL\s+STATE\s+PRODUCTION\s+BASELINE ELO\s+STREAK\s+CONFIG\s+PENDING APPROVAL$/,
    );
    expect(lines.find((l) => l.startsWith('hex8_2p'))).toMatch(
      /^hex8_2p\s+awaitingApproval\s+v2\s+1520\s+1\s+hex8_2p\s+severe -> v1, approval_required/,
    );
    expect(lines.find((l) => l.startsWith('sq9_4p'))).toMatch(/^sq9_4p\s+healthy\s+v2/);

    const json = await warden(['status', '--json'], api);
    expect(json.code).toBe(0);
    const view = JSON.parse(json.stdout) as {
      models: Array<{ model_id: string; state: string }>;
      training: unknown[];
    };
    expect(view.models.map((m) => [m.model_id, m.state])).toEqual([
      ['hex8_2p', 'awaitingApproval'],
      ['sq9_4p', 'healthy'],
    ]);
    expect(view.training).toEqual([]);
  });

  it('status <model> shows one model in detail; an unknown model exits 3, a malformed one 2', async () => {
    const detail = await warden(['status', 'hex8_2p'], api);
    expect(detail.code).toBe(0);
    expect(detail.stdout).toMatch(/^model:\s+hex8_2p$/m);
    expect(detail.stdout).toMatch(/^pending approval:\s+severe -> v1/m);
    expect(detail.stdout).toMatch(/^VERSION\s+ELO\s+WIN RATE\s+PROMOTED/m);

    const unknown = await warden(['status', 'ghost', '--json'], api);
    expect(unknown.code).toBe(3);
    expect(JSON.parse(unknown.stdout)).toEqual({
      error: { code: 'unknown_model', message: expect.stringContaining('"ghost"') },
    });

    const malformed = await warden(['status', 'a.b'], api);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('model: expected a single token');
  });

  it('cannot reach Warden: exit 5 and says where it tried', async () => {
    const port = await closedPort();
    const run = await warden(['status', '--url', `http://127.0.0.1:${port}`]);
    expect(run.code).toBe(5);
    expect(run.stderr).toContain(`cannot reach Warden at http://127.0.0.1:${port}`);
  });

  it('reads where viewer tokens are configured: no token says which tokens a read takes (exit 6)', async () => {
    const viewed = await startTestService({ http: { viewerTokens: ['viewer-token-0123456789'] } });
    try {
      const none = await warden(['status'], { WARDEN_URL: viewed.url });
      expect(none.code).toBe(6);
      expect(none.stderr).toBe(
        `warden: this command needs a token (viewer, operator or producer): set WARDEN_TOKEN or pass --token (Warden at ${viewed.url} has tokens configured)\n`,
      );
      const viewer = await warden(['status'], {
        WARDEN_URL: viewed.url,
        WARDEN_TOKEN: 'viewer-token-0123456789',
      });
      expect(viewer.code).toBe(0);
    } finally {
      await viewed.close();
    }
  });

  it('a --url or WARDEN_URL that is not an http(s) URL is bad usage: exit 2, saying what was expected', async () => {
    const run = await warden(['status', '--url', 'not a url']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('expected an http:// or https:// URL');
    const fromEnv = await warden(['status'], { WARDEN_URL: 'ftp://127.0.0.1:8080' });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toContain('received the scheme "ftp:"');
  });

  it('a 128-character id (the contract allows 128) works in every command (issue 8, finding 5)', async () => {
    const id = `c${'y'.repeat(126)}z`;
    await promoteTwo(t, id);
    const env = operator();
    const status = await warden(['status', id, '--json'], env);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).models[0].model_id).toBe(id);
    expect((await warden(['approve', id], env)).code).toBe(4); // reached: nothing pending
    expect((await warden(['reject', id], env)).code).toBe(4);
    expect((await warden(['pause', id, '--reason', 'long id'], env)).code).toBe(0);
    expect((await warden(['resume', id], env)).code).toBe(0);
    expect((await warden(['rollback', id, '--to', 'v1', '--reason', 'long id'], env)).code).toBe(0);
    const history = await warden(['history', id, '--json'], env);
    expect(history.code).toBe(0);
    expect(JSON.parse(history.stdout).rollbacks[0]).toMatchObject({ model_id: id });
  });

  it('diagram prints both machines as Mermaid', async () => {
    const run = await warden(['diagram']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('%% Model actor (one per model)\nstateDiagram-v2');
    expect(run.stdout).toContain('%% Training-config actor (one per config)\nstateDiagram-v2');
    expect(run.stdout).toMatch(/awaitingApproval --> rollingBack : .*APPROVE/);
    expect(run.stdout).toMatch(/running --> paused : .*PAUSE/);
  });
});

describe('cli: commands', { timeout: SPAWN_TIMEOUT_MS }, () => {
  it('refuses without a token (6), and with a producer token (6); nothing changes', async () => {
    const none = await warden(['approve', 'hex8_2p'], api);
    expect(none.code).toBe(6);
    // Issue 8, finding 8: where the token goes, not the raw header text the server expected.
    expect(none.stderr).toBe(
      `warden: this command needs an operator token: set WARDEN_TOKEN or pass --token (Warden at ${t.url} has tokens configured)\n`,
    );
    const wrong = await warden(['approve', 'hex8_2p', '--token', 'not-a-known-token-0123'], api);
    expect(wrong.stderr).toContain('expected an operator token (WARDEN_OPERATOR_TOKENS)');
    expect(wrong.code).toBe(6);
    expect(wrong.stderr).toContain('does not know the token given (--token or WARDEN_TOKEN)');
    expect(wrong.stderr).not.toContain('not-a-known-token');
    const producer = await warden(['approve', 'hex8_2p', '--json'], { ...api, WARDEN_TOKEN: PRODUCER_TOKEN });
    expect(producer.code).toBe(6);
    expect(JSON.parse(producer.stdout).error.code).toBe('forbidden');
    expect(t.service.warden.status('hex8_2p').models[0]!.state).toBe('awaitingApproval');
  });

  it('approve rolls back and pauses; the history shows who; approving again exits 4', async () => {
    const approved = await warden(
      ['approve', 'hex8_2p', '--note', 'confirmed on the ladder', '--json'],
      operator(),
    );
    expect(approved.code).toBe(0);
    expect(JSON.parse(approved.stdout)).toMatchObject({
      model_id: 'hex8_2p',
      by: `alice (${operatorId})`,
      outcome: { kind: 'rollback_started', toVersion: 'v1' },
      state: 'rollingBack',
    });
    await t.service.warden.idle();

    const history = await warden(['history', 'hex8_2p'], api);
    expect(history.code).toBe(0);
    expect(history.stdout.split('\n')[0]).toMatch(
      /^WHEN\s+MODEL\s+OUTCOME\s+FROM\s+TO\s+TRIGGER\s+BY\s+REASON$/,
    );
    expect(history.stdout).toMatch(
      /hex8_2p\s+rolled_back\s+v2\s+v1\s+auto_regression_approved\s+alice \(operator:[0-9a-f]{6}\)\s+Approved rollback/,
    );

    const again = await warden(['approve', 'hex8_2p'], operator());
    expect(again.code).toBe(4);
    expect(again.stderr).toContain('has no pending approval');
  });

  it('resume resumes the paused config (human output)', async () => {
    const resumed = await warden(['resume', 'hex8_2p', '--note', 'fixed the data'], operator());
    expect(resumed.code).toBe(0);
    expect(resumed.stdout.trim()).toBe(
      `resume hex8_2p: resumed; now running; recorded as by "alice (${operatorId})"`,
    );
    expect(t.service.warden.trainingStatus('hex8_2p').may_train).toBe(true);
  });

  it('approve, reject and resume take --reason as their --note (what pause and rollback call it)', async () => {
    expect((await warden(['pause', 'hex8_2p', '--reason', 'disk full'], operator())).code).toBe(0);
    const resumed = await warden(['resume', 'hex8_2p', '--reason', 'disk replaced'], operator());
    expect(resumed.code).toBe(0);
    const timeline = await t.api('GET', '/ui/api/models/hex8_2p/timeline');
    const summaries = (timeline.body as { training: Array<{ summary: string }> }).training.map(
      (e) => e.summary,
    );
    expect(summaries[0]).toBe(`resumed by alice (${operatorId}): disk replaced`);
    const help = await warden(['resume', '--help'], operator());
    expect(help.stdout).toContain('--note <text>');
    expect(help.stdout).not.toContain('--reason');
  });

  it('pause needs a reason (usage, exit 2) and then pauses', async () => {
    const missing = await warden(['pause', 'sq9_4p'], operator());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '--reason <text>' not specified");
    const paused = await warden(
      ['pause', 'sq9_4p', '--reason', 'cluster upgrade', '--by', 'bob', '--json'],
      operator(),
    );
    expect(paused.code).toBe(0);
    expect(JSON.parse(paused.stdout)).toMatchObject({
      config_key: 'sq9_4p',
      by: `bob (${operatorId})`,
      state: 'paused',
    });
  });

  it('rollback --to a version; an unknown version exits 3', async () => {
    const unknownVersion = await warden(['rollback', 'sq9_4p', '--to', 'v9', '--reason', 'test'], operator());
    expect(unknownVersion.code).toBe(3);
    expect(unknownVersion.stderr).toContain('expected one of the promoted versions');
    const rolled = await warden(
      ['rollback', 'sq9_4p', '--to', 'v1', '--reason', 'bad openings', '--json'],
      operator(),
    );
    expect(rolled.code).toBe(0);
    expect(JSON.parse(rolled.stdout).outcome).toMatchObject({ kind: 'rollback_started', toVersion: 'v1' });
    await t.service.warden.idle();
    const history = await warden(['history', '--limit', '1', '--json'], api);
    expect(JSON.parse(history.stdout).rollbacks).toEqual([
      expect.objectContaining({
        model_id: 'sq9_4p',
        triggered_by: 'manual',
        reason: 'bad openings',
        by: `alice (${operatorId})`,
      }),
    ]);
  });

  it('reject keeps the model in production', async () => {
    await t.api('POST', '/v1/promotions', { model_id: 'go19', version: 'v1', elo: 1500 }, PRODUCER_TOKEN);
    await t.api('POST', '/v1/promotions', { model_id: 'go19', version: 'v2', elo: 1520 }, PRODUCER_TOKEN);
    await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'go19', current_elo: 1460, games_played: 100 },
      PRODUCER_TOKEN,
    );
    const rejected = await warden(
      ['reject', 'go19', '--note', 'evaluation cluster was broken', '--json'],
      operator(),
    );
    expect(rejected.code).toBe(0);
    expect(JSON.parse(rejected.stdout)).toMatchObject({ outcome: { kind: 'rejected' } });
    expect(t.service.warden.status('go19').models[0]!.production_version).toBe('v2');
  });
});

describe('cli: start', { timeout: SPAWN_TIMEOUT_MS }, () => {
  it('runs the service, and SIGTERM stops it and the process ends by itself, inspector on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-cli-start-'));
    const [httpPort, deadPort] = [await closedPort(), await closedPort()];
    // The inspector points at a relay nobody runs: its retries must not keep the process up either.
    const child = spawn(
      process.execPath,
      [
        'bin/warden.js',
        'start',
        '--port',
        String(httpPort),
        '--data-dir',
        dir,
        '--inspect-url',
        `ws://127.0.0.1:${deadPort}`,
      ],
      { cwd: ROOT, env: cleanEnv({ WARDEN_LOG_LEVEL: 'info' }) },
    );
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        const check = () => (output.includes('Warden is running') ? resolve() : undefined);
        child.stdout.on('data', check);
        exited.then(() => reject(new Error(`warden start exited early:\n${output}`)));
      });
      const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
      expect(health.status).toBe(200);
      expect(output).toContain(`Stately inspector: events go to ws://127.0.0.1:${deadPort}`);
      child.kill('SIGTERM');
      // No forced exit: the process ends once nothing holds it (the safety net would exit 1 after 10 s).
      expect(await exited).toBe(0);
      expect(output).toContain('Warden stopped');
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
