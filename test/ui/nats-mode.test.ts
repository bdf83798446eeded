import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsNames } from '../../src/nats/names.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsServer, type NatsServer } from '../harness/nats-server.ts';
import {
  launchBrowser,
  OPERATOR_TOKEN,
  PRODUCER_TOKEN,
  signIn,
  startWarden,
  tempDir,
  VIEWER_TOKEN,
  waitForText,
  type Warden,
} from './support.ts';

let nats: NatsServer;
const data = tempDir();
beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats?.[Symbol.asyncDispose]();
  data.remove();
});

/** Reads the live stream until `until` holds for the frames so far (bounded by the test's timeout). */
async function liveFrames(warden: Warden, until: (text: string) => boolean, act: () => Promise<void>) {
  const response = await fetch(`${warden.url}/ui/api/live`, {
    headers: { authorization: `Bearer ${VIEWER_TOKEN}` },
  });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  while (!text.includes('event: ready')) text += (await reader.read()).value ?? '';
  await act();
  while (!until(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  await reader.cancel();
  return text;
}

describe('ui: the timeline and the live stream in NATS mode', { timeout: 60_000 }, () => {
  it('keeps the timeline in KV across a restart, and streams the changes', async () => {
    const config = { nats: { url: nats.url }, approval: { requireForSevere: true } };
    let warden = await startWarden(data.dir, 0, config);
    try {
      for (const [version, elo] of [
        ['v1', 1500],
        ['v2', 1520],
      ] as const)
        expect(
          (await warden.api('POST', '/v1/promotions', { model_id: 'm1', version, elo }, PRODUCER_TOKEN))
            .status,
        ).toBe(200);

      const frames = await liveFrames(
        warden,
        (text) => text.includes('"state":"awaitingApproval"') && text.includes('regression_detected'),
        async () => {
          await warden.api(
            'POST',
            '/v1/evaluations',
            { model_id: 'm1', current_elo: 1460, games_played: 100 },
            PRODUCER_TOKEN,
          );
        },
      );
      expect(frames).toContain('event: models');
      expect(frames).toContain('event: event');

      expect((await warden.api('POST', '/v1/models/m1/approve', { note: 'go' }, OPERATOR_TOKEN)).status).toBe(
        200,
      );
      await eventually(async () => {
        const reply = await warden.api('GET', '/ui/api/models/m1/timeline', undefined, VIEWER_TOKEN);
        expect(reply.body.timeline.map((e: { event: string }) => e.event)).toContain('PAUSE_ACKNOWLEDGED');
      });
    } finally {
      await warden.stop();
    }

    warden = await startWarden(data.dir, 0, config);
    try {
      const reply = await warden.api('GET', '/ui/api/models/m1/timeline', undefined, VIEWER_TOKEN);
      expect(reply.body.timeline.map((e: { event: string }) => e.event)).toEqual([
        'PAUSE_ACKNOWLEDGED',
        'ROLLBACK_SUCCEEDED',
        'APPROVE',
        'EVALUATED',
        'PROMOTED',
        'PROMOTED',
      ]);
      expect(reply.body.timeline[2].summary).toMatch(/^rollback approved by operator:[0-9a-f]{6}: go$/);
      expect(reply.body.training.map((e: { event: string }) => e.event)).toEqual(['PAUSE']);
    } finally {
      await warden.stop();
    }
  });
});

describe(
  'ui: a timeline split between the timeline bucket and the actor value, in a browser',
  { timeout: 90_000 },
  () => {
    /**
     * In NATS mode a model's newest timeline lines wait in its actor value until 8 are there (or a minute has
     * passed), then move to its key in the timeline bucket; the store's read merges the two. The page shows
     * every line once, in order, and the same after a reload.
     */
    it('shows every line once, newest first, and the same after a reload', async () => {
      const dir = tempDir();
      const prefix = 'uisplit';
      const config = { nats: { url: nats.url, prefix } };
      const warden = await startWarden(dir.dir, 0, config);
      const browser = await launchBrowser();
      const nc = await connect({ servers: nats.url });
      try {
        for (let i = 1; i <= 8; i++) {
          const reply = await warden.api(
            'POST',
            '/v1/promotions',
            { model_id: 'm2', version: `v${i}`, elo: 1500 },
            PRODUCER_TOKEN,
          );
          expect(reply.status).toBe(200);
        }
        const names = natsNames(prefix);
        const kvm = new Kvm(nc);
        const [actors, timelines] = await Promise.all([
          kvm.open(names.actorBucket),
          kvm.open(names.timelineBucket),
        ]);
        const value = async () =>
          (await actors.get('model.m2'))!.json<{ timeline?: unknown[]; outbox: unknown[] }>();
        const linesMovedAndWaiting = async () => [
          (await timelines.get('model.m2'))?.json<{ lines: unknown[] }>().lines.length ?? 0,
          (await value()).timeline?.length ?? 0,
        ];
        // 8 lines move together to the timeline bucket.
        await eventually(async () => expect(await linesMovedAndWaiting()).toEqual([8, 0]));
        // Three evaluations that announce a minor regression, then clear it: a line and an event each. The
        // events are published and cleared from the value; the lines wait there (a minute, or until 8 wait).
        for (const elo of [1478, 1500, 1478]) {
          const reply = await warden.api(
            'POST',
            '/v1/evaluations',
            { model_id: 'm2', current_elo: elo, games_played: 400 },
            PRODUCER_TOKEN,
          );
          expect(reply.status).toBe(200);
        }
        await eventually(async () => {
          expect((await value()).outbox).toEqual([]);
          expect(await linesMovedAndWaiting()).toEqual([8, 3]);
        });

        const page = await browser.context.newPage();
        await signIn(page, warden.url, VIEWER_TOKEN);
        await page.goto(`${warden.url}/ui#/model/m2`);
        const shown = async () => {
          await waitForText(page, '.timeline li', 'v1');
          const lines = page.locator('.timeline li');
          return {
            events: await lines.evaluateAll((items) => items.map((li) => li.getAttribute('data-event'))),
            text: await lines.allTextContents(),
          };
        };
        const before = await shown();
        expect(before.events).toEqual([...Array(3).fill('EVALUATED'), ...Array(8).fill('PROMOTED')]);
        expect(before.text[3]).toContain('v8');
        expect(before.text[10]).toContain('v1');
        await page.reload();
        expect(await shown()).toEqual(before);
        await page.close();
      } finally {
        await nc.close();
        await browser.close();
        await warden.stop();
        dir.remove();
      }
    });
  },
);
