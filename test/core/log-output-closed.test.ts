/**
 * The service with its log output closed (`npm start | head -1`, a log shipper that died): it goes on
 * serving, says once on stderr that its logs are dropped, and stops in order on SIGTERM. A real process
 * from the sources and through `warden start`, with the reading end of its stdout closed before it writes
 * anything.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startServiceProcess } from '../harness/service-process.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the service with its log output closed', () => {
  it.each([
    ['from the sources', ['--import', 'tsx', 'src/main.ts']],
    ['as `warden start`', ['bin/warden.js', 'start']],
  ])(
    'goes on serving, says so once on stderr, and stops in order: %s',
    async (_, args) => {
      const dir = mkdtempSync(join(tmpdir(), 'warden-logs-closed-'));
      dirs.push(dir);
      const service = await startServiceProcess(args, dir, { closeStdout: true });
      const { child, url } = service;
      try {
        await service.ready();
        for (const version of ['v1', 'v2']) {
          const response = await fetch(`${url}/v1/promotions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model_id: 'm', version, elo: 1500 }),
          });
          expect(response.status).toBe(200);
        }
        const status = (await (await fetch(`${url}/v1/models/m`)).json()) as {
          model: { production_version: string };
        };
        expect(status.model.production_version).toBe('v2');
        const stderr = service.output();
        expect(stderr.match(/the log output failed/g)).toHaveLength(1);
        expect(stderr).not.toMatch(/Unhandled|at /);
        child.kill('SIGTERM');
        expect(await service.exited).toBe(0);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    },
    40_000,
  );
});
