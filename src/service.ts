import type { Logger } from 'pino';
import type { Config } from './config/schema.ts';
import type { Clock } from './actors/ports.ts';
import { createWarden, type Warden, type WardenDeps } from './warden.ts';

export interface Service {
  readonly warden: Warden;
  /** Human-readable lines for the start-up log: where Warden listens and what it connects to. */
  readonly endpoints: string[];
  /** Ordered shutdown: stop intake, finish in-flight work, persist, close connections. */
  stop(): Promise<void>;
}

export interface ServiceDeps {
  readonly logger: Logger;
  readonly clock?: Clock;
}

/**
 * Builds the whole service from a validated configuration: adapters (embedded unless a NATS URL is
 * configured), the Warden runtime, and the operator surfaces. Tests and `main.ts` both come through here.
 */
export async function buildService(config: Config, deps: ServiceDeps): Promise<Service> {
  const closers: Array<() => Promise<void>> = [];
  const endpoints: string[] = [];
  const wardenDeps: { -readonly [K in keyof WardenDeps]: WardenDeps[K] } = { logger: deps.logger };
  if (deps.clock) wardenDeps.clock = deps.clock;

  // [adapters] NATS mode plugs its bus, store and registry in here.
  if (!config.nats.url) endpoints.push(`embedded mode: state in ${config.dataDir}/warden.db`);

  const warden = await createWarden(config, wardenDeps);

  // [surfaces] the HTTP API, metrics and alerts attach to `warden` here.

  return {
    warden,
    endpoints,
    async stop() {
      for (const close of closers.reverse()) await close();
      await warden.stop();
    },
  };
}
