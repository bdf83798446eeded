import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { buildService, type Service, type ServiceDeps } from '../../src/service.ts';

export const OPERATOR_TOKEN = 'op-token-0123456789abcdef';
export const PRODUCER_TOKEN = 'pr-token-0123456789abcdef';

/** A pino logger whose JSON lines the test can read (to check what was logged, and what never was). */
export function captureLogger(): {
  logger: Logger;
  lines: () => Array<Record<string, unknown>>;
  text: () => string;
} {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  const text = () => chunks.join('');
  return {
    logger,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

export interface ApiReply {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON from the wire, asserted field by field
  text: string;
  headers: Headers;
}

export interface TestService {
  readonly service: Service;
  readonly url: string;
  readonly clock: ManualClock;
  readonly dir: string;
  readonly log: ReturnType<typeof captureLogger>;
  api(method: string, path: string, body?: unknown, token?: string): Promise<ApiReply>;
  close(): Promise<void>;
}

/**
 * The whole service (embedded mode) on a temp data directory, a manual clock and an HTTP port the OS
 * picks; tokens are configured unless the test says otherwise.
 */
export async function startTestService(
  config: ConfigInput = {},
  deps: Partial<ServiceDeps> = {},
): Promise<TestService> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-http-'));
  const clock = new ManualClock();
  const log = captureLogger();
  const full: ConfigInput = {
    ...config,
    dataDir: dir,
    http: { port: 0, operatorTokens: [OPERATOR_TOKEN], producerTokens: [PRODUCER_TOKEN], ...config.http },
  };
  const service = await buildService(parseConfig(full), { logger: log.logger, clock, ...deps });
  const url = service.httpUrl!;
  return {
    service,
    url,
    clock,
    dir,
    log,
    async api(method, path, body, token) {
      const headers: Record<string, string> = {};
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      const response = await fetch(`${url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Not JSON (the metrics page): the test reads `text`.
      }
      return { status: response.status, body: parsed, text, headers: response.headers };
    },
    async close() {
      await service.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Two promotions (v1 at 1500, v2 at 1520): v1 is the known-good version to roll back to. */
export async function promoteTwo(t: TestService, modelId = 'hex8_2p'): Promise<void> {
  for (const [version, elo] of [
    ['v1', 1500],
    ['v2', 1520],
  ] as const) {
    const reply = await t.api('POST', '/v1/promotions', { model_id: modelId, version, elo }, PRODUCER_TOKEN);
    if (reply.status !== 200) throw new Error(`promotion failed: ${reply.text}`);
  }
}

/** Parses the Prometheus text format into `name{labels}` -> value (labels as written by prom-client). */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}
