import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../harness/eventually.ts';
import { startNatsServer, type NatsServer } from '../harness/nats-server.ts';
import {
  OPERATOR_TOKEN,
  PRODUCER_TOKEN,
  startWarden,
  tempDir,
  VIEWER_TOKEN,
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
