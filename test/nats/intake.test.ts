import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import { createNatsAdapters } from '../../src/nats/index.ts';
import { TEST_HOOKS } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const nats = useSharedNats();

describe('the input intake', () => {
  it('hands inputs over in order, one input of a model at a time, acknowledging each once handled', async () => {
    const adapters = await createNatsAdapters(
      parseConfig({ nats: { url: nats.server.url } }),
      pino({ level: 'silent' }),
      TEST_HOOKS,
    );
    try {
      // A backlog first, so that the whole pipeline fills at once: 300 inputs of one model, 100 of another.
      for (let i = 0; i < 400; i++) {
        const model = i % 4 === 3 ? 'other' : 'hot';
        await nats.client.publish(`warden.in.evaluation.${model}`, { model_id: model, games_played: i });
      }
      const seen = new Map<string, number[]>();
      const inFlight = new Map<string, number>();
      const peak = new Map<string, number>();
      let handled = 0;
      const done = new Promise<void>((resolve) => {
        adapters.bus.subscribe('warden.in.evaluation.*', async (message) => {
          const model = message.subject.split('.')[3]!;
          seen.set(model, [
            ...(seen.get(model) ?? []),
            (message.data as { games_played: number }).games_played,
          ]);
          inFlight.set(model, (inFlight.get(model) ?? 0) + 1);
          peak.set(model, Math.max(peak.get(model) ?? 0, inFlight.get(model)!));
          // Handling takes a little while, as a commit does.
          await new Promise((r) => setTimeout(r, 2));
          inFlight.set(model, inFlight.get(model)! - 1);
          if (++handled === 400) resolve();
        });
      });
      await done;
      await adapters.bus.idle();
      const hot = seen.get('hot')!;
      expect(hot).toEqual([...hot].sort((a, b) => a - b));
      expect(hot).toHaveLength(300);
      expect(seen.get('other')).toHaveLength(100);
      expect(peak.get('hot')).toBe(1);
      const consumer = await nats.client.jsm.consumers.info('WARDEN_IN', 'warden_inputs');
      expect(consumer.num_ack_pending).toBe(0);
      expect(consumer.num_redelivered).toBe(0);
      expect(consumer.ack_floor.stream_seq).toBe(400);
    } finally {
      await adapters.close();
    }
  });
});
