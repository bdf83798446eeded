import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import { startHttpServer } from '../../src/http/server.ts';
import { silentLogger } from '../../src/logger.ts';
import { createWarden } from '../../src/warden.ts';

describe('http: readiness', () => {
  it('is ready only while the transport hook says so (NATS mode: connected)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-ready-'));
    const warden = await createWarden(parseConfig({ dataDir: dir }), { clock: new ManualClock() });
    let connected = false;
    const server = await startHttpServer(warden, {
      host: '127.0.0.1',
      port: 0,
      operatorTokens: [],
      producerTokens: [],
      logger: silentLogger,
      ready: () => connected,
    });
    try {
      const notReady = await fetch(`${server.url}/readyz`);
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toEqual({
        error: { code: 'unavailable', message: 'not ready: not connected to NATS yet' },
      });
      // Liveness does not depend on it.
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      connected = true;
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      // Without metrics the route says so rather than serving an empty page.
      expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    } finally {
      await server.close();
      await warden.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
