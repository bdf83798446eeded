import pino from 'pino';
import type { Clock, ModelRegistry, StateStore } from '../../src/actors/ports.ts';
import type { RuntimeObserver } from '../../src/actors/runtime.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import type { WardenError } from '../../src/domain/errors.ts';
import { createNatsAdapters, type NatsAdapterHooks, type NatsAdapters } from '../../src/nats/index.ts';
import { createWarden, type Warden } from '../../src/warden.ts';
import { eventually } from './eventually.ts';

export interface NatsWardenOptions {
  readonly config?: ConfigInput;
  readonly clock?: Clock;
  readonly observer?: RuntimeObserver;
  readonly hooks?: NatsAdapterHooks;
  /** e.g. `info` to see the service's logs while debugging a test. */
  readonly logLevel?: string;
  /** Wraps the store Warden's runtime uses (the NATS adapters keep the real one), to inject failures. */
  readonly wrapStore?: (store: StateStore) => StateStore;
  /** Called for every rejected input, besides the count (e.g. a real metrics registry). */
  readonly onRejected?: (kind: string, error: WardenError) => void;
  /** Wraps the model registry Warden's runtime uses, e.g. to hold a rollback in flight. */
  readonly wrapRegistry?: (registry: ModelRegistry) => ModelRegistry;
  /** false: resolve once it takes inputs, before it has read every actor's value (see below). */
  readonly waitForRead?: boolean;
}

export interface NatsWarden extends AsyncDisposable {
  readonly warden: Warden;
  readonly adapters: NatsAdapters;
  /** Rejected inputs counted by kind, from Warden and from the transport (what the metric counts). */
  readonly rejected: Map<string, number>;
  /**
   * Waits until Warden is idle with no rollback in flight. (`Warden.idle()` does not wait for registry
   * calls, which in NATS mode are round trips to KV.)
   */
  settled(): Promise<void>;
  /**
   * Orderly shutdown, as the service does it: commands stop, Warden stops, the connection drains. `onStep`
   * hears which part it is in, for a test that reports where a run over its budget stopped.
   */
  stop(onStep?: (step: string) => void): Promise<void>;
}

/** Short waits for tests: redeliveries and stranded outbox entries are picked up within a second or two. */
export const TEST_HOOKS: NatsAdapterHooks = {
  jetstream: { ackWaitMs: 2_000, leaseTtlMs: 2_000 },
  store: { strandedAfterMs: 1_000, sweepEveryMs: 250 },
};

/** A Warden in this process, in NATS mode, wired like `buildService` does it. */
export async function startNatsWarden(url: string, options: NatsWardenOptions = {}): Promise<NatsWarden> {
  const config = parseConfig({ ...options.config, nats: { ...options.config?.nats, url } });
  const logger = pino({ level: options.logLevel ?? process.env.WARDEN_TEST_LOG ?? 'silent' });
  const rejected = new Map<string, number>();
  const count = (kind: string, error: WardenError) => {
    rejected.set(kind, (rejected.get(kind) ?? 0) + 1);
    options.onRejected?.(kind, error);
  };
  const adapters = await createNatsAdapters(config, logger, {
    ...TEST_HOOKS,
    ...options.hooks,
    jetstream: { ...TEST_HOOKS.jetstream, ...options.hooks?.jetstream },
    store: { ...TEST_HOOKS.store, ...options.hooks?.store },
    onRejected: count,
  });
  const warden = await createWarden(config, {
    bus: adapters.bus,
    store: options.wrapStore ? options.wrapStore(adapters.store) : adapters.store,
    registry: options.wrapRegistry ? options.wrapRegistry(adapters.registry) : adapters.registry,
    logger,
    onRejected: count,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.observer ? { observer: options.observer } : {}),
  });
  await adapters.attach(warden);
  // Started as a user sees it through the API: reads answer once every actor's value is read (it takes
  // inputs before; test/nats/background-load.test.ts looks at that window).
  if (options.waitForRead !== false) await warden.whenLoaded();
  let stopped = false;
  const stop = async (onStep?: (step: string) => void) => {
    if (stopped) return;
    stopped = true;
    onStep?.('detaching the adapters');
    await adapters.detach();
    onStep?.('stopping Warden');
    await warden.stop((step) => onStep?.(`stopping Warden: ${step}`));
  };
  const settled = async () => {
    await eventually(async () => {
      await warden.idle();
      const rollingBack = warden.status().models.filter((m) => m.state === 'rollingBack');
      if (rollingBack.length > 0)
        throw new Error(`still rolling back: ${rollingBack.map((m) => m.model_id).join(', ')}`);
    });
    await warden.idle();
  };
  return { warden, adapters, rejected, settled, stop, [Symbol.asyncDispose]: () => stop() };
}
