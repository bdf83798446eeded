/** One Warden instance in NATS mode for the benches, wired as the service wires it, logging nothing. */
import pino from 'pino';
import type { RuntimeObserver } from '../src/actors/runtime.ts';
import { parseConfig } from '../src/config/load.ts';
import type { ConfigInput } from '../src/config/schema.ts';
import { createNatsAdapters, type NatsAdapterHooks } from '../src/nats/index.ts';
import { createWarden } from '../src/warden.ts';

/** Started on `prefix` of the server at `url`; resolves once it takes inputs. */
export async function startNatsInstance(
  url: string,
  prefix: string,
  options: {
    readonly config?: ConfigInput;
    readonly partitions?: number;
    readonly observer?: RuntimeObserver;
    readonly hooks?: NatsAdapterHooks;
  } = {},
) {
  const config = parseConfig({
    ...options.config,
    nats: { url, prefix, partitions: options.partitions ?? 1 },
  });
  const logger = pino({ level: 'silent' });
  const adapters = await createNatsAdapters(config, logger, options.hooks);
  const warden = await createWarden(config, {
    bus: adapters.bus,
    store: adapters.store,
    registry: adapters.registry,
    logger,
    observer: options.observer ?? {},
  });
  await adapters.attach(warden);
  return {
    warden,
    adapters,
    async stop() {
      await adapters.detach();
      await warden.stop();
    },
  };
}
