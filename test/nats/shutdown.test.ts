import { describe, expect, it } from 'vitest';
import { startNatsServer } from '../harness/nats-server.ts';
import { connectClient } from '../harness/nats-client.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { eventually } from '../harness/eventually.ts';

describe('NATS mode with NATS gone', () => {
  it('stops within its deadlines, with no unhandled rejection, and the next start carries on', async () => {
    await using server = await startNatsServer();
    await using client = await connectClient(server.url);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const first = await startNatsWarden(server.url);
      await client.publish('warden.in.promotion.sd_model', { model_id: 'sd_model_v1', elo: 1500 });
      await first.settled();
      // Work in flight when NATS goes away: an input, and the outbox bookkeeping after its events.
      await client.publish('warden.in.promotion.sd_model', { model_id: 'sd_model_v2', elo: 1510 });
      await server.stop();
      const markPublished = first.adapters.store.markPublished(['sd_model.e1', 'not-an-event']);
      await expect(markPublished).resolves.toBeUndefined();
      const started = performance.now();
      await first.stop();
      const seconds = (performance.now() - started) / 1000;
      // Deadlines: in-flight inputs 10 s, store bookkeeping 3 s, connection drain 5 s.
      expect(seconds).toBeLessThan(25);

      await server.start();
      await using second = await startNatsWarden(server.url);
      await eventually(() =>
        expect(second.warden.status('sd_model').models[0]!.versions.map((v) => v.version)).toEqual([
          'v1',
          'v2',
        ]),
      );
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  }, 60_000);
});
