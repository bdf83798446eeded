import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/logger.ts';
import { CommandResponder } from '../../src/nats/commands.ts';
import { createWarden, type Warden } from '../../src/warden.ts';
import { startNatsServer, type NatsServer } from '../harness/nats-server.ts';
import { runToEnd, type Finished } from '../harness/child-process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Each test spawns a few CLI processes (tsx start-up is most of it); a loaded machine needs headroom. */
const SPAWN_TIMEOUT_MS = 60_000;

function warden(args: string[]): Promise<Finished> {
  return runToEnd(process.execPath, ['bin/warden.js', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_BY: 'alice' },
  });
}

let server: NatsServer;
let nc: NatsConnection;
let core: Warden;
let responder: CommandResponder;
let dir: string;

/**
 * The CLI against Warden's own NATS command responder (request/reply on warden.cmd.*), on a real
 * nats-server; the Warden behind it is embedded.
 */
beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  dir = mkdtempSync(join(tmpdir(), 'warden-cli-nats-'));
  core = await createWarden(parseConfig({ dataDir: dir, approval: { requireForSevere: true } }), {
    clock: new ManualClock(),
  });
  responder = new CommandResponder(nc, core, 'warden', 'warden-commands', silentLogger);
  await nc.flush();
  await core.promote({ model_id: 'hex8_2p', version: 'v1', elo: 1500 });
  await core.promote({ model_id: 'hex8_2p', version: 'v2', elo: 1520 });
  await core.evaluate({ model_id: 'hex8_2p', current_elo: 1460, games_played: 100 });
  await core.idle();
});
afterAll(async () => {
  await responder?.close();
  await nc?.close();
  await core?.stop();
  await server?.[Symbol.asyncDispose](); // stops it and removes its store
  rmSync(dir, { recursive: true, force: true });
});

describe('cli over NATS (--nats)', { timeout: SPAWN_TIMEOUT_MS }, () => {
  it('reads status and history, approves, and maps a refused command to its exit code', async () => {
    const status = await warden(['status', '--nats', server.url, '--json']);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).models).toEqual([
      expect.objectContaining({ model_id: 'hex8_2p', state: 'awaitingApproval' }),
    ]);

    const approved = await warden(['approve', 'hex8_2p', '--nats', server.url, '--note', 'via nats']);
    expect(approved.code).toBe(0);
    expect(approved.stdout).toMatch(
      /^approve hex8_2p: rollback_started \(rollbackId \S+, toVersion v1\); now rollingBack; recorded as by "alice"$/m,
    );
    await core.idle();

    const again = await warden(['approve', 'hex8_2p', '--nats', server.url, '--json']);
    expect(again.code).toBe(4);
    expect(JSON.parse(again.stdout).error.code).toBe('no_pending_approval');

    const history = await warden(['history', 'hex8_2p', '--nats', server.url, '--json']);
    expect(history.code).toBe(0);
    expect(JSON.parse(history.stdout).rollbacks).toEqual([
      expect.objectContaining({ model_id: 'hex8_2p', triggered_by: 'auto_regression_approved', by: 'alice' }),
    ]);
  });
});
