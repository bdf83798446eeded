import type { Logger } from 'pino';
import type { Config } from './config/schema.ts';
import type { Clock } from './actors/ports.ts';
import { lockDataDir, type DataDirLock } from './embedded/data-dir-lock.ts';
import { createWarden, type Warden, type WardenDeps } from './warden.ts';
import { createNatsAdapters } from './nats/index.ts';
import { createMetrics } from './metrics/metrics.ts';
import { startHttpServer } from './http/server.ts';
import { createChangeFeed } from './http/live.ts';
import { startAlerts } from './alerts/index.ts';
import { inspectionTargetFromEnv, startInspection, type InspectionTarget } from './inspect/inspector.ts';

export interface Service {
  readonly warden: Warden;
  /** Human-readable lines for the start-up log: where Warden listens and what it connects to. */
  readonly endpoints: string[];
  /** Where the HTTP API listens (the real port when 0 was configured). */
  readonly httpUrl?: string;
  /** Ordered shutdown: stop intake, finish in-flight work, persist, close connections. */
  stop(): Promise<void>;
}

export interface ServiceDeps {
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Where the Stately inspector sends when `inspect` is on (default: WARDEN_INSPECT_URL / _PORT). */
  readonly inspection?: InspectionTarget;
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
  const nats = config.nats.url
    ? await createNatsAdapters(config, deps.logger, {
        onRejected: (kind, error) => wardenDeps.onRejected?.(kind, error),
      })
    : null;
  if (nats) {
    wardenDeps.bus = nats.bus;
    wardenDeps.store = nats.store;
    wardenDeps.registry = nats.registry;
    // First closer to run last: commands stop, then warden.stop() stops intake and the connection drains.
    closers.push(() => nats.detach());
    endpoints.push(nats.endpoint);
  }
  if (!config.nats.url) endpoints.push(`embedded mode: state in ${config.dataDir}/warden.db`);

  const metrics = createMetrics({ clock: deps.clock, maxModelSeries: config.metrics.maxModelSeries });
  if (nats) metrics.bindNats(nats);
  // The dashboard's live view hears which actors took an input (and reads only those).
  const changes = createChangeFeed();
  wardenDeps.observer = changes.wrap(metrics.observer);
  wardenDeps.onRejected = metrics.onRejected;
  // Inputs from the bus (NATS); the HTTP layer times its own requests.
  wardenDeps.onProcessed = metrics.observeProcessing;
  wardenDeps.onShadowDecision = metrics.shadowDecision;
  const inspection = config.inspect
    ? await startInspection(
        {
          host: config.inspectHost,
          dashboardPort: config.http.port,
          ...(deps.inspection ?? inspectionTargetFromEnv(process.env)),
        },
        deps.logger,
      )
    : null;
  if (inspection) {
    wardenDeps.inspect = inspection.inspect;
    closers.push(() => inspection.stop());
    endpoints.push(inspection.endpoint);
  }

  // Events committed before a crash are published again on start; alerts must be listening by then.
  wardenDeps.holdPublishing = true;
  // Embedded: one Warden per data directory, held until the very end of stop() (see lockDataDir).
  let lock: DataDirLock | null = null;
  try {
    lock = config.nats.url ? null : lockDataDir(config.dataDir);
  } catch (error) {
    await inspection?.stop();
    throw error;
  }
  const warden = await createWarden(config, wardenDeps).catch(async (error: unknown) => {
    await nats?.close();
    lock?.release();
    throw error;
  });
  await nats?.attach(warden);

  // [surfaces] the HTTP API, metrics and alerts attach to `warden` here.
  metrics.bind(warden);
  let httpUrl: string;
  try {
    const alerts = await startAlerts(warden, config, {
      logger: deps.logger,
      clock: deps.clock,
      onAttempt: metrics.alertDelivery,
    });
    if (alerts) {
      closers.push(() => alerts.close());
      endpoints.push(alerts.endpoint);
    }
    warden.startPublishing();
    const http = await startHttpServer(warden, {
      ...config.http,
      logger: deps.logger,
      metrics,
      onRejected: metrics.onRejected,
      ready: nats ? () => nats.ready() : undefined,
      // A full comparison catches what another instance changed silently; embedded, nobody else does.
      ui: { live: { changes, fullEveryMs: nats ? 5000 : 60_000 } },
    });
    closers.push(() => http.close());
    endpoints.push(`HTTP API on ${http.url}: ${http.auth.summary}`);
    httpUrl = http.url;
  } catch (error) {
    for (const close of closers.reverse()) await close();
    await warden.stop();
    lock?.release();
    throw error;
  }

  return {
    warden,
    endpoints,
    httpUrl,
    async stop() {
      for (const close of closers.reverse()) await close();
      await warden.stop();
      lock?.release();
    },
  };
}
