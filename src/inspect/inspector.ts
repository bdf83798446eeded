import { createInspector } from '@statelyai/inspect';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import { startRelay, type Relay } from './relay.ts';
import { SocketAdapter } from './socket-adapter.ts';

/** Where the inspector's events go: an existing relay (url), or a relay Warden opens on this port. */
export interface InspectionTarget {
  readonly url?: string | undefined;
  readonly relayPort?: number | undefined;
  /** Where the relay Warden opens listens (default loopback; 0.0.0.0 to reach it in a container). */
  readonly host?: string | undefined;
  /** Warden's HTTP port, for the relay page's pointer to the dashboard at /ui. */
  readonly dashboardPort?: number | undefined;
}

export const DEFAULT_RELAY_PORT = 8090;

/** WARDEN_INSPECT_URL (a ws:// relay already running) or WARDEN_INSPECT_PORT (the relay Warden opens). */
export function inspectionTargetFromEnv(env: NodeJS.ProcessEnv): InspectionTarget {
  const port =
    env.WARDEN_INSPECT_PORT === undefined || env.WARDEN_INSPECT_PORT === ''
      ? undefined
      : Number(env.WARDEN_INSPECT_PORT);
  return { url: env.WARDEN_INSPECT_URL || undefined, relayPort: Number.isInteger(port) ? port : undefined };
}

export interface Inspection {
  /** For WardenDeps.inspect: every actor's XState inspection events. */
  readonly inspect: (event: InspectionEvent) => void;
  /** What to tell the operator (the page to open), for the start-up log. */
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** The Stately inspector sending to `url`, over a connection that never holds the process open. */
export function connectInspector(
  url: string,
  logger: Logger,
): { inspect: (event: InspectionEvent) => void; stop(): void } {
  const adapter = new SocketAdapter({ url, logger });
  const inspector = createInspector(adapter);
  inspector.start();
  return {
    inspect: (event) => inspector.inspect.next?.(event),
    stop: () => inspector.stop(),
  };
}

/**
 * Turns the inspector on: opens the loopback relay (unless a relay URL is given) and connects to it.
 * When the relay cannot open (its port is taken), Warden runs on without the inspector and says why.
 */
export async function startInspection(target: InspectionTarget, logger: Logger): Promise<Inspection | null> {
  const log = logger.child({ component: 'inspect' });
  let relay: Relay | null = null;
  if (target.url === undefined) {
    try {
      relay = await startRelay({
        port: target.relayPort ?? DEFAULT_RELAY_PORT,
        host: target.host,
        dashboardPort: target.dashboardPort,
      });
    } catch (error) {
      log.error(
        { err: error },
        'Stately inspector is off: its relay could not open (set WARDEN_INSPECT_PORT to a free port)',
      );
      return null;
    }
  }
  const url = target.url ?? relay!.eventsUrl;
  const inspector = connectInspector(url, log);
  const endpoint = relay
    ? `Stately inspector: open ${relay.pageUrl} in a browser`
    : `Stately inspector: events go to ${url}`;
  log.info(endpoint);
  return {
    inspect: inspector.inspect,
    endpoint,
    async stop() {
      inspector.stop();
      await relay?.close();
    },
  };
}
