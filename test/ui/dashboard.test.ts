import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import {
  OPERATOR_TOKEN,
  PRODUCER_TOKEN,
  VIEWER_TOKEN,
  launchBrowser,
  signIn,
  startWarden,
  tempDir,
  waitForText,
  type Warden,
} from './support.ts';

const MODEL = 'hex8_2p';
/** Severe regressions wait for a person: the dashboard is where they decide. */
const CONFIG = { approval: { requireForSevere: true }, cooldownSeconds: 600 };

let browser: Awaited<ReturnType<typeof launchBrowser>>;
let context: BrowserContext;
const data = tempDir();
let warden: Warden;
let port = 0;

beforeAll(async () => {
  browser = await launchBrowser();
  context = browser.context;
  warden = await startWarden(data.dir, 0, CONFIG);
  port = Number(new URL(warden.url).port);
  for (const [version, elo] of [
    ['v1', 1500],
    ['v2', 1520],
  ] as const) {
    const reply = await warden.api(
      'POST',
      '/v1/promotions',
      { model_id: MODEL, version, elo },
      PRODUCER_TOKEN,
    );
    expect(reply.status).toBe(200);
  }
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await warden?.stop();
  data.remove();
});

async function clickAction(page: Page, button: string, note: string): Promise<string> {
  await page.getByRole('button', { name: button, exact: true }).first().click();
  const dialog = page.getByRole('dialog');
  await dialog.locator('textarea').fill(note);
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  const result = dialog.locator('.result');
  await result.waitFor({ timeout: 10_000 });
  const text = (await result.textContent()) ?? '';
  await dialog.getByRole('button', { name: /Close|Cancel/ }).click();
  return text;
}

describe('ui: the operator dashboard in a real browser', () => {
  it('refuses a reader without a token, and says what it expects', async () => {
    const page = await context.newPage();
    await page.goto(`${warden.url}/ui`);
    await waitForText(page, '[role=alert]', 'expected an "Authorization: Bearer <token>" header');
    expect(await page.getByTestId('identity').count()).toBe(0);
    // The API behind it too: reads need a token once viewer tokens are configured.
    expect((await warden.api('GET', '/v1/models')).status).toBe(401);
    expect((await warden.api('GET', '/v1/models', undefined, VIEWER_TOKEN)).status).toBe(200);
    await page.close();
  });

  it('while Warden still reads every model (its 503 after a start in NATS mode), says so and loads the list once it answers', async () => {
    const page = await context.newPage();
    // Warden's answer to a list read while an instance that has just started in NATS mode reads every
    // model's state (test/nats/background-load.test.ts has the server's side); twice, then the real one.
    const reading =
      "this instance started 3 s ago and is still reading every model's stored state (reads answer once it has; inputs and commands are taken meanwhile): try again in a few seconds";
    let refused = 0;
    await page.route('**/v1/models', async (route) => {
      if (refused >= 2) return route.continue();
      refused++;
      return route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'unavailable', message: reading } }),
      });
    });
    await signIn(page, warden.url, VIEWER_TOKEN);
    await waitForText(page, '[data-testid=live]', 'still reading every model');
    await page.locator('.row[data-model]', { hasText: MODEL }).first().waitFor({ timeout: 10_000 });
    await page.locator('[data-testid=live]', { hasText: /^live$/ }).waitFor({ timeout: 10_000 });
    expect(refused).toBe(2);
    await page.close();
  });

  it('shows a regression live, takes the approval, and follows the rollback, the cooldown and the pause', async () => {
    const page = await context.newPage();
    await signIn(page, warden.url, OPERATOR_TOKEN);
    await waitForText(page, '[data-testid=live]', 'live');
    await page.goto(`${warden.url}/ui#/model/${MODEL}`);
    await waitForText(page, '[data-testid=model-state]', 'healthy');
    // The token was entered once: it is in this tab's session storage, and in no URL.
    expect(await page.evaluate('sessionStorage.getItem("warden.token")')).toBe(OPERATOR_TOKEN);
    expect(page.url()).not.toContain(OPERATOR_TOKEN);

    // A severe regression arrives while the page is open: it changes without a reload.
    const evaluation = await warden.api(
      'POST',
      '/v1/evaluations',
      { model_id: MODEL, current_elo: 1460, games_played: 100 },
      PRODUCER_TOKEN,
    );
    expect(evaluation.body.state).toBe('awaitingApproval');
    await waitForText(page, '[data-testid=model-state]', 'awaitingApproval');
    await waitForText(page, '.pending-one', 'deadline');

    const approved = await clickAction(page, 'Approve', 'checked the games: v2 is worse');
    expect(approved).toMatch(
      /^done: rollback_started; now rollingBack \(recorded as operator:[0-9a-f]{6}\)$/,
    );

    // rollingBack -> rolledBack -> cooldown once the training config acknowledges its pause.
    await waitForText(page, '[data-testid=model-state]', 'cooldown');
    await waitForText(page, '[data-testid=training-status]', 'paused');
    await waitForText(page, '[data-testid=production]', 'v1');
    await waitForText(page, '.timeline li[data-event=ROLLBACK_SUCCEEDED]', 'rollingBack → rolledBack');
    await waitForText(page, '.timeline li[data-event=PAUSE_ACKNOWLEDGED]', 'rolledBack → cooldown');
    await waitForText(page, '.timeline li[data-event=APPROVE]', 'checked the games: v2 is worse');
    await waitForText(page, '.statechart .node.current', 'cooldown');
    await waitForText(page, '.lineage tr[data-version=v1]', 'production');

    // The audit log names the token's identity, never the token.
    const audit = warden.log.lines().find((l) => l.command === 'approve');
    expect(audit?.by).toMatch(/^operator:[0-9a-f]{6}$/);
    expect(warden.log.text()).not.toContain(OPERATOR_TOKEN);

    const resumed = await clickAction(page, 'Resume training', 'fixed the data pipeline');
    expect(resumed).toMatch(/^done: resumed; now running/);
    await waitForText(page, '[data-testid=training-status]', 'running');
    await waitForText(page, '.timeline li[data-event=RESUME]', 'fixed the data pipeline');
    await page.close();
  });

  it('says when Warden is gone, reconnects after a restart, and shows the same state after a reload', async () => {
    const page = await context.newPage();
    await signIn(page, warden.url, VIEWER_TOKEN);
    await page.goto(`${warden.url}/ui#/model/${MODEL}`);
    await waitForText(page, '[data-testid=live]', 'live');
    await waitForText(page, '[data-testid=model-state]', 'cooldown');

    await warden.stop();
    await waitForText(page, '[data-testid=live]', 'disconnected');
    warden = await startWarden(data.dir, port, CONFIG);
    await waitForText(page, '[data-testid=live]', 'live');

    await page.reload();
    await waitForText(page, '[data-testid=model-state]', 'cooldown');
    await waitForText(page, '[data-testid=training-status]', 'running');
    await waitForText(page, '[data-testid=production]', 'v1');
    await waitForText(page, '.timeline li[data-event=RESUME]', 'fixed the data pipeline');

    // The cooldown deadline is the injected clock's: past it, the model is healthy again, live.
    warden.clock.advance(601_000);
    await waitForText(page, '[data-testid=model-state]', 'healthy');
    await page.close();
  });

  it('refuses an action with a producer token, in words that say which token is needed', async () => {
    const page = await context.newPage();
    await signIn(page, warden.url, PRODUCER_TOKEN);
    await page.goto(`${warden.url}/ui#/model/${MODEL}`);
    await waitForText(page, '[data-testid=model-state]', 'healthy');
    const refused = await clickAction(page, 'Pause training', 'should not work');
    expect(refused).toBe(
      'refused (403 forbidden): a producer token may only publish evaluations and promotions; expected an operator token',
    );
    expect((await warden.api('GET', `/v1/training/${MODEL}`, undefined, VIEWER_TOKEN)).body.status).toBe(
      'running',
    );
    await page.close();
  });
});

describe('ui: the models list', () => {
  it('searches by model or config and filters by state, live', async () => {
    for (const id of ['go9_a', 'go9_b', 'chess_x'])
      expect(
        (
          await warden.api(
            'POST',
            '/v1/promotions',
            { model_id: id, version: 'v1', elo: 1500 },
            PRODUCER_TOKEN,
          )
        ).status,
      ).toBe(200);
    const page = await context.newPage();
    await signIn(page, warden.url, VIEWER_TOKEN);
    const heading = 'section[aria-label=models] h2';
    await waitForText(page, heading, 'Models (4 of 4)');
    await page.getByLabel('search').fill('go9');
    await waitForText(page, heading, 'Models (2 of 4)');
    expect(
      await page
        .locator('.row[data-model]')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-model'))),
    ).toEqual(['go9_a', 'go9_b']);
    await page.getByLabel('search').fill('');
    await page.getByLabel('state filter').selectOption('regressed');
    await waitForText(page, heading, 'Models (0 of 4)');
    // A model that regresses while the filter is on appears in it without a reload.
    await warden.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'go9_b', current_elo: 1475, games_played: 100 },
      PRODUCER_TOKEN,
    );
    await waitForText(page, heading, 'Models (1 of 4)');
    await waitForText(page, '.row[data-model=go9_b]', 'regressed');

    // The statistical detector's running test shows with the model, once an evaluation carries outcomes.
    await page.getByLabel('state filter').selectOption('all');
    await warden.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'chess_x', games_played: 100, wins: 34, draws: 32, losses: 34 },
      PRODUCER_TOKEN,
    );
    await waitForText(page, '.row[data-model=chess_x]', 'SPRT #1: LLR');
    await waitForText(page, '.row[data-model=chess_x]', '100 games');
    await page.close();
  });

  it('rolls back to a chosen version, asking for a reason, and shows the result', async () => {
    for (const version of ['v2', 'v3'])
      await warden.api('POST', '/v1/promotions', { model_id: 'go9_a', version, elo: 1500 }, PRODUCER_TOKEN);
    const page = await context.newPage();
    await signIn(page, warden.url, OPERATOR_TOKEN);
    await page.goto(`${warden.url}/ui#/model/go9_a`);
    await waitForText(page, '[data-testid=production]', 'v3');
    await page.getByRole('button', { name: 'Roll back…' }).click();
    const dialog = page.getByRole('dialog');
    // The last known-good version is offered first; any earlier one may be chosen.
    expect(await dialog.locator('select option').allTextContents()).toEqual(['v2', 'v1']);
    await dialog.locator('select').selectOption('v1');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await waitForText(page, '.dialog .result', 'a reason is required');
    await dialog.locator('textarea').fill('v2 and v3 share the broken tokenizer');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await waitForText(page, '.dialog .result', 'done: rollback_started; now rollingBack');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await waitForText(page, '[data-testid=production]', 'v1');
    await waitForText(
      page,
      '.timeline li[data-event=ROLLBACK_REQUESTED]',
      'rollback to v1 requested by operator:',
    );
    await waitForText(
      page,
      '.timeline li[data-event=ROLLBACK_REQUESTED]',
      'v2 and v3 share the broken tokenizer',
    );
    await page.close();
  });
});
