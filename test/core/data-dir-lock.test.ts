/**
 * One embedded Warden per data directory. A second service on a directory in use refuses to start, says
 * why and exits 1, and the first goes on; once the first is gone, however it ended (SIGKILL included), the
 * directory can be used again. Real processes from the sources.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../harness/eventually.ts';
import { freePort } from '../harness/free-port.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface Service {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<number | string>;
  output(): string;
}

async function service(dir: string): Promise<Service> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      WARDEN_DATA_DIR: dir,
      WARDEN_HTTP_PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return { child, url: `http://127.0.0.1:${port}`, exited, output: () => output };
}

async function ready(s: Service): Promise<void> {
  await eventually(
    async () => {
      expect(s.child.exitCode, s.output()).toBeNull();
      expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    },
    { timeoutMs: 20_000 },
  );
}

describe('one embedded Warden per data directory', () => {
  it('a second one refuses to start and says why; the directory is free again once the first is killed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-lock-'));
    dirs.push(dir);
    const first = await service(dir);
    await ready(first);

    const second = await service(dir);
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(
      `warden: cannot start: the data directory ${dir} is in use by another Warden process`,
    );
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);

    first.child.kill('SIGKILL');
    await first.exited;
    const third = await service(dir);
    await ready(third);
    third.child.kill('SIGTERM');
    expect(await third.exited).toBe(0);
  }, 60_000);
});
