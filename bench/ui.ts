/**
 * `npm run bench:ui`: how long the dashboard's first load takes with 10,000 models, from navigation to a
 * usable list (the rows drawn and the count shown), in Debian's chromium, beside the same load with 10
 * models measured in the same run (the anchor: what the page costs by itself). Loads alternate between
 * the two; the figures are medians with min-max. Options: --models N (default 10000), --loads L (default 7).
 * A figure, not a pass/fail: the target is under 2 s on this machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BrowserContext } from 'playwright-core';
import { ManualClock } from '../src/actors/manual-clock.ts';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/logger.ts';
import { buildService, type Service } from '../src/service.ts';
import { launchBrowser, OPERATOR_TOKEN, PRODUCER_TOKEN } from '../test/ui/support.ts';
import { option } from './options.ts';

const MODELS = option('models', 10_000);
const LOADS = option('loads', 7);
const ANCHOR = 10;

interface Seeded {
  service: Service;
  dir: string;
  models: number;
}

/** A service with `count` models, a few of them regressed or waiting for an approval, as on a real day. */
async function seeded(count: number): Promise<Seeded> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-ui-'));
  const service = await buildService(
    parseConfig({
      dataDir: dir,
      approval: { requireForSevere: true },
      http: { port: 0, operatorTokens: [OPERATOR_TOKEN], producerTokens: [PRODUCER_TOKEN] },
    }),
    { logger: silentLogger, clock: new ManualClock() },
  );
  const { warden } = service;
  const ids = Array.from({ length: count }, (_, i) => `model_${String(i).padStart(5, '0')}`);
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    await Promise.all(chunk.map((id) => warden.promote({ model_id: id, version: 'v1', elo: 1500 })));
    await Promise.all(chunk.map((id) => warden.promote({ model_id: id, version: 'v2', elo: 1520 })));
    // One model in 50 regressed, one in 200 waiting for a person.
    await Promise.all(
      chunk
        .filter((_, j) => (i + j) % 50 === 0)
        .map((id, j) =>
          warden.evaluate({ model_id: id, current_elo: j % 4 === 0 ? 1460 : 1495, games_played: 100 }),
        ),
    );
  }
  await warden.idle();
  return { service, dir, models: count };
}

/** Milliseconds from navigation to the list drawn with its full count. */
async function load(context: BrowserContext, target: Seeded): Promise<number> {
  const page = await context.newPage();
  // As if signed in already: the token is in this tab's session storage (a string: this file has no DOM types).
  await page.addInitScript(`sessionStorage.setItem('warden.token', ${JSON.stringify(OPERATOR_TOKEN)})`);
  const started = performance.now();
  await page.goto(`${target.service.httpUrl}/ui`);
  await page.locator('.row[data-model]').first().waitFor({ timeout: 60_000 });
  await page
    .locator('section[aria-label=models] h2', { hasText: `of ${target.models})` })
    .waitFor({ timeout: 60_000 });
  const elapsed = performance.now() - started;
  await page.close();
  return elapsed;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) =>
  `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;

async function main(): Promise<void> {
  const seedStart = performance.now();
  const big = await seeded(MODELS);
  const anchor = await seeded(ANCHOR);
  const seedSeconds = (performance.now() - seedStart) / 1000;
  const payload = await fetch(`${big.service.httpUrl}/v1/models`, {
    headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
  }).then((r) => r.text());
  const browser = await launchBrowser();
  const times = { big: [] as number[], anchor: [] as number[] };
  try {
    await load(browser.context, anchor); // warm-up: chromium's own first start
    for (let i = 0; i < LOADS; i++) {
      times.anchor.push(await load(browser.context, anchor));
      times.big.push(await load(browser.context, big));
    }
  } finally {
    await browser.close();
    for (const s of [big, anchor]) {
      await s.service.stop();
      rmSync(s.dir, { recursive: true, force: true });
    }
  }
  console.log(`dashboard first load, Debian chromium headless, ${LOADS} loads each, alternating`);
  console.log(
    `(seeded in ${seedSeconds.toFixed(1)} s; /v1/models for ${MODELS} models is ${(payload.length / 1e6).toFixed(1)} MB)`,
  );
  console.log(`  ${String(ANCHOR).padStart(6)} models (anchor): ${fmt(times.anchor)}`);
  console.log(`  ${String(MODELS).padStart(6)} models:          ${fmt(times.big)}`);
  console.log(
    `  ratio of medians: ${(median(times.big) / median(times.anchor)).toFixed(1)}x; target: usable in under 2000 ms with 10000 models`,
  );
}

await main();
