import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { LIVE, STRICTER, T0, evaluation, knownVersions, promotion, toJsonLines } from '../lab/support.ts';

let browser: Awaited<ReturnType<typeof launchBrowser>>;
const data = tempDir();
let warden: Warden;

beforeAll(async () => {
  browser = await launchBrowser();
  warden = await startWarden(data.dir, 0, LIVE);
  for (const line of knownVersions()) {
    const { kind, timestamp, ...payload } = line;
    warden.clock.advance(Math.max((timestamp as number) * 1000 - warden.clock.now(), 0));
    const reply = await warden.api('POST', `/v1/${kind}s`, payload, PRODUCER_TOKEN);
    expect(reply.status).toBe(200);
    await warden.service.warden.idle();
  }
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await warden?.stop();
  data.remove();
});

describe('ui: the policy lab page', () => {
  it('replays a candidate over the journal and shows live and candidate rollbacks side by side', async () => {
    const page = await browser.context.newPage();
    await signIn(page, warden.url, OPERATOR_TOKEN);
    await page.getByTestId('lab-link').click();
    await page.getByTestId('lab-config').fill(JSON.stringify(STRICTER));
    await page.getByRole('button', { name: 'Replay' }).click();
    await waitForText(page, '[data-testid=lab-summary]', 'the candidate adds 2 rollback(s) and removes 1');
    const row = page.getByTestId('lab-row-hex8');
    expect((await row.getByTestId('lab-live').textContent())!.replace(/\s+/g, ' ')).toContain('v2 → v1');
    const candidate = (await row.getByTestId('lab-candidate').textContent())!.replace(/\s+/g, ' ');
    expect(candidate).toContain('v3 → v1');
    expect(candidate).toContain('v4 → v1');
    // What the candidate adds is marked.
    expect(await row.getByTestId('lab-candidate').locator('.changed').count()).toBe(2);
    // Nothing live changed: hex8 still runs v3.
    const model = await warden.api('GET', '/v1/models/hex8', undefined, OPERATOR_TOKEN);
    expect(model.body.model.production_version).toBe('v3');
    await page.close();
  });

  it('says what is wrong with a candidate the service refuses', async () => {
    const page = await browser.context.newPage();
    await signIn(page, warden.url, OPERATOR_TOKEN);
    await page.goto(`${warden.url}/ui#/lab`);
    await page.getByTestId('lab-config').fill('{"cooldownSeconds": -1}');
    await page.getByRole('button', { name: 'Replay' }).click();
    await waitForText(page, '[role=alert]', 'invalid');
    await page.close();
  });

  it('keeps the job in the address: a reload shows it again, and a page opened during a job follows it', async () => {
    // A job started elsewhere (the API), over a long posted history: the page opens while it runs, or
    // just after; either way it shows that job, the newest.
    const lines = [promotion(T0, 'big', 'v1')];
    for (let i = 1; i <= 6_000; i++)
      lines.push(evaluation(T0 + 60 * i, 'big', 'v1', i % 500 === 0 ? 1400 : 1500));
    const started = await warden.api(
      'POST',
      '/v1/replays',
      { config: STRICTER, history: toJsonLines(lines) },
      OPERATOR_TOKEN,
    );
    expect(started.status).toBe(200);
    const page = await browser.context.newPage();
    await signIn(page, warden.url, OPERATOR_TOKEN);
    await page.goto(`${warden.url}/ui#/lab`);
    await page.waitForURL(`**/ui#/lab/${started.body.job_id}`);
    await waitForText(page, '[data-testid=lab-summary]', 'the candidate');
    const summary = await page.getByTestId('lab-summary').textContent();
    await page.reload();
    await waitForText(page, '[data-testid=lab-summary]', summary!);
    expect(page.url()).toContain(`#/lab/${started.body.job_id}`);
    // The address was replaced, not pushed: going back leaves the lab.
    await page.goBack();
    await page.waitForURL((url) => !url.hash.startsWith('#/lab'));
    await page.close();
  });
});
