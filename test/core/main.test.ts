/**
 * `npm start` (src/main.ts) as a real process: it starts the embedded service with no set-up, keeps
 * running, and on SIGTERM or SIGINT shuts down in order and exits 0; a bad configuration stops start-up
 * with every problem listed and exit code 1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnTs } from '../harness/child-process.ts';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;
const dirs: string[] = [];

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-main-'));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('npm start (src/main.ts)', { timeout: 60_000 }, () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`runs embedded with no set-up and stops in order on ${signal}`, async () => {
      const child = spawnTs(MAIN, {
        WARDEN_DATA_DIR: dataDir(),
        WARDEN_HTTP_PORT: '0',
        WARDEN_LOG_LEVEL: 'info',
      });
      try {
        const running = await child.line('Warden is running', 30_000);
        expect(running).toContain('embedded mode');
        expect(await child.kill(signal)).toBe(0);
      } finally {
        await child.kill('SIGKILL');
      }
    });
  }

  it('refuses a bad configuration, listing every problem, with exit code 1', async () => {
    const child = spawnTs(MAIN, {
      WARDEN_DATA_DIR: dataDir(),
      WARDEN_COOLDOWN_SECONDS: 'soon',
      WARDEN_HTTP_PORT: '-1',
    });
    const code = await new Promise<number | null>((resolve) => child.process.once('exit', resolve));
    expect(code).toBe(1);
    expect(child.stderr()).toContain('invalid configuration in the environment:');
    expect(child.stderr()).toMatch(/cooldownSeconds: .*expected number, received string/);
    expect(child.stderr()).toMatch(/http\.port: .*received -1/);
  });
});
