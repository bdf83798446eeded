import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { connectNats, type NatsLink } from '../nats/connection.ts';
import { entryText } from '../nats/kv-util.ts';
import type { AlertLedger, DeliveryRecord } from './ledger.ts';

/** Finished deliveries are remembered this long (the bucket's TTL): a replay inside it is recognised. */
const KEEP_MS = 7 * 24 * 3600_000;

/** The bucket every instance shares: `<prefix>_alerts` (nats.conf grants the warden user `warden_alerts`). */
export const alertBucketName = (prefix: string): string => `${prefix}_alerts`;

/**
 * NATS mode's alert ledger: one KV entry per delivery, shared by every instance, on a connection of its
 * own (the adapters' connection belongs to the bus and store, which close it in their order).
 */
export class KvAlertLedger implements AlertLedger {
  private constructor(
    private readonly link: NatsLink,
    private readonly kv: KV,
  ) {}

  static async open(settings: Config['nats'], logger: Logger): Promise<KvAlertLedger> {
    const link = await connectNats(settings, logger, 'warden-alerts');
    try {
      const kv = await new Kvm(jetstream(link.nc)).create(alertBucketName(settings.prefix), {
        history: 1,
        storage: 'file',
        ttl: KEEP_MS,
      });
      return new KvAlertLedger(link, kv);
    } catch (error) {
      await link.close();
      throw error;
    }
  }

  async get(id: string): Promise<DeliveryRecord | null> {
    const text = entryText(await this.kv.get(id));
    return text === null ? null : (JSON.parse(text) as DeliveryRecord);
  }

  async put(record: DeliveryRecord): Promise<void> {
    await this.kv.put(record.id, JSON.stringify(record));
  }

  async close(): Promise<void> {
    await this.link.close();
  }
}
