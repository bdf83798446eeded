import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { buildService, type Service } from '../../src/service.ts';
import { ensureUiBuilt } from '../../src/ui/ensure-built.ts';
import { OPERATOR_TOKEN, PRODUCER_TOKEN, captureLogger } from '../http/support.ts';

export const VIEWER_TOKEN = 'vw-token-0123456789abcdef';
export { OPERATOR_TOKEN, PRODUCER_TOKEN };

export const CHROMIUM = process.env.WARDEN_CHROMIUM ?? '/usr/bin/chromium';

/** Debian's chromium, never a downloaded browser; a fresh profile each time, nothing in the background. */
export async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `expected Debian's chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does it)`,
    );
  await ensureUiBuilt();
  const profile = mkdtempSync(join(tmpdir(), 'warden-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface Warden {
  readonly service: Service;
  readonly url: string;
  readonly clock: ManualClock;
  readonly log: ReturnType<typeof captureLogger>;
  api(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON from the wire
  stop(): Promise<void>;
}

/** The service (embedded mode) on a data directory the test keeps across restarts, on a given port. */
export async function startWarden(dir: string, port: number, config: ConfigInput = {}): Promise<Warden> {
  const clock = new ManualClock();
  const log = captureLogger();
  const service = await buildService(
    parseConfig({
      ...config,
      dataDir: dir,
      http: {
        port,
        operatorTokens: [OPERATOR_TOKEN],
        producerTokens: [PRODUCER_TOKEN],
        viewerTokens: [VIEWER_TOKEN],
        ...config.http,
      },
    }),
    { logger: log.logger, clock },
  );
  const url = service.httpUrl!;
  return {
    service,
    url,
    clock,
    log,
    async api(method, path, body, token) {
      const headers: Record<string, string> = {};
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      const response = await fetch(`${url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    },
    stop: () => service.stop(),
  };
}

export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'warden-ui-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Signs in on a fresh tab: the token goes in the form, then stays in this tab's session storage. */
export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/ui`);
  await page.getByLabel('token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('identity').waitFor({ timeout: 10_000 });
}

/** Waits (bounded) until the element shows this text. */
export async function waitForText(
  page: Page,
  selector: string,
  text: string,
  timeout = 10_000,
): Promise<void> {
  await page.locator(selector, { hasText: text }).first().waitFor({ timeout });
}
