/**
 * `npm run screenshots`: the pictures of docs/operators.md, taken from a real Warden (embedded, a manual
 * clock) in Debian's chromium: the models list, a model waiting for approval, the approval with its
 * result, a model after its rollback, the sign-in refusal, and the inspector page without internet.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startRelay } from '../../src/inspect/relay.ts';
import {
  OPERATOR_TOKEN,
  PRODUCER_TOKEN,
  launchBrowser,
  signIn,
  startWarden,
  tempDir,
  waitForText,
  type Warden,
} from './support.ts';

const OUT = join(import.meta.dirname, '../../docs/img');

async function seed(warden: Warden): Promise<void> {
  const post = async (path: string, body: unknown) => {
    const reply = await warden.api('POST', path, body, PRODUCER_TOKEN);
    if (reply.status !== 200) throw new Error(`${path}: ${JSON.stringify(reply.body)}`);
  };
  const families = ['hex8', 'sq19', 'chess', 'go9', 'shogi'];
  const ids = Array.from({ length: 40 }, (_, i) => `${families[i % 5]}_${Math.floor(i / 5)}p`);
  // A day in the life, on the injected clock: promotions in the morning, evaluations later.
  for (const [i, id] of ids.entries())
    await post('/v1/promotions', { model_id: id, version: 'v1', elo: 1480 + i });
  warden.clock.advance(6 * 3600_000);
  for (const [i, id] of ids.entries())
    await post('/v1/promotions', { model_id: id, version: 'v2', elo: 1500 + i });
  warden.clock.advance(2 * 3600_000);
  for (const [i, id] of ids.entries())
    if (i % 9 === 3)
      await post('/v1/evaluations', { model_id: id, current_elo: 1500 + i - 25, games_played: 400 });
  // Some pipelines send game outcomes: the statistical detector runs its test on those.
  for (const id of ['chess_0p', 'chess_1p', 'go9_0p'])
    await post('/v1/evaluations', { model_id: id, games_played: 400, wins: 128, draws: 140, losses: 132 });
  warden.clock.advance(20 * 60_000);
  // Two severe regressions wait for a person; one was approved before and is cooling down.
  await post('/v1/evaluations', { model_id: 'hex8_0p', current_elo: 1440, games_played: 400 });
  await post('/v1/evaluations', { model_id: 'sq19_1p', current_elo: 1445, games_played: 400 });
  await post('/v1/evaluations', { model_id: 'chess_2p', current_elo: 1452, games_played: 400 });
  warden.clock.advance(4 * 60_000);
  await warden.api(
    'POST',
    '/v1/models/chess_2p/approve',
    { note: 'confirmed on the tournament games' },
    OPERATOR_TOKEN,
  );
  await warden.service.warden.idle();
  warden.clock.advance(7 * 60_000);
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(OUT, name) });
  console.log(`docs/img/${name}`);
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const data = tempDir();
  const warden = await startWarden(data.dir, 0, {
    approval: { requireForSevere: true },
    cooldownSeconds: 3600,
  });
  const browser = await launchBrowser();
  try {
    await seed(warden);
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1200, height: 760 });

    await page.goto(`${warden.url}/ui`);
    await waitForText(page, '[role=alert]', 'expected an "Authorization: Bearer <token>" header');
    await shot(page, 'dashboard-sign-in.png');

    await signIn(page, warden.url, OPERATOR_TOKEN);
    await waitForText(page, '[data-testid=live]', 'live');
    await waitForText(page, 'section[aria-label=models] h2', 'of 40)');
    await shot(page, 'dashboard-models.png');

    await page.goto(`${warden.url}/ui#/model/hex8_0p`);
    await waitForText(page, '.pending-one', 'deadline');
    await shot(page, 'dashboard-model-approval.png');

    await page.getByRole('button', { name: 'Approve', exact: true }).click();
    await page.getByRole('dialog').locator('textarea').fill('v2 lost 80 Elo on 400 games: roll back');
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('dialog').locator('.result').waitFor({ timeout: 10_000 });
    await shot(page, 'dashboard-approve.png');
    await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();

    await waitForText(page, '[data-testid=model-state]', 'cooldown');
    await waitForText(page, '.timeline li[data-event=PAUSE_ACKNOWLEDGED]', 'cooldown');
    await page.setViewportSize({ width: 1200, height: 1000 });
    await shot(page, 'dashboard-model-rolled-back.png');

    const relay = await startRelay({
      port: 0,
      inspectorUrl: 'http://127.0.0.1:9/inspect',
      readyTimeoutMs: 300,
    });
    try {
      await page.setViewportSize({ width: 1000, height: 420 });
      await page.goto(relay.pageUrl);
      await page.getByRole('alert').waitFor({ timeout: 10_000 });
      await page.getByRole('status').getByText('connected to Warden').waitFor({ timeout: 10_000 });
      await shot(page, 'inspector-offline.png');
    } finally {
      await relay.close();
    }
  } finally {
    await browser.close();
    await warden.stop();
    data.remove();
  }
}

await main();
