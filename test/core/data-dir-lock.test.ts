/**
 * One embedded Warden per data directory. A second service on a directory in use refuses to start, says
 * why and exits 1, and the first goes on; once the first is gone, however it ended (SIGKILL included), the
 * directory can be used again. Real processes from the sources.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startServiceProcess, type ServiceProcess } from '../harness/service-process.ts';

const dirs: string[] = [];
const services: ServiceProcess[] = [];
afterEach(() => {
  for (const { child } of services.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function service(dir: string): Promise<ServiceProcess> {
  const started = await startServiceProcess(['--import', 'tsx', 'src/main.ts'], dir);
  services.push(started);
  return started;
}

describe('one embedded Warden per data directory', () => {
  it('a second one refuses to start and says why; the directory is free again once the first is killed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-lock-'));
    dirs.push(dir);
    const first = await service(dir);
    await first.ready();

    const second = await service(dir);
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(
      `warden: cannot start: the data directory ${dir} is in use by another Warden process`,
    );
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);

    first.child.kill('SIGKILL');
    await first.exited;
    const third = await service(dir);
    await third.ready();
    third.child.kill('SIGTERM');
    expect(await third.exited).toBe(0);
  }, 60_000);
});
