import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Warden } from '../warden.ts';

export interface LiveOptions {
  /** How often the hub compares the status with what it last sent (only while someone listens). */
  readonly intervalMs?: number;
  /** A comment line this often, so that a client can tell a quiet stream from a dead one. */
  readonly heartbeatMs?: number;
}

export interface LiveHub {
  /** Takes over an HTTP response and streams server-sent events into it until either side closes. */
  attach(response: ServerResponse): void;
  readonly clients: number;
  /** Ends every stream (the server is closing) and stops listening to the bus. */
  close(): void;
}

interface Snapshot {
  models: Map<string, string>;
  training: Map<string, string>;
}

/**
 * What the dashboard's live view listens to: server-sent events over a plain GET, so the browser can read
 * it with fetch() and an Authorization header (EventSource cannot send one, and a token never goes in a
 * URL). Events:
 * - `models` / `training`: the statuses that changed, and the model ids that are gone;
 * - `event`: each output event on `<prefix>.evt.>` (what happened, for the page of that model).
 * A change is found by comparing the status with what was last sent, at once after a bus event and every
 * `intervalMs` otherwise (a cooldown that ends publishes nothing, a promotion neither), so every change
 * reaches the page within about that interval, whichever instance made it.
 */
export function createLiveHub(warden: Warden, logger: Logger, options: LiveOptions = {}): LiveHub {
  const intervalMs = options.intervalMs ?? 400;
  const heartbeatMs = options.heartbeatMs ?? 5000;
  const clients = new Set<ServerResponse>();
  let last: Snapshot | null = null;
  let ticker: NodeJS.Timeout | null = null;
  let heartbeat: NodeJS.Timeout | null = null;
  let soon = false;
  let unsubscribe: (() => void) | null = null;

  const read = (): { snapshot: Snapshot; status: ReturnType<Warden['status']> } => {
    const status = warden.status();
    return {
      status,
      snapshot: {
        models: new Map(status.models.map((m) => [m.model_id, JSON.stringify(m)])),
        training: new Map(status.training.map((t) => [t.config_key, JSON.stringify(t)])),
      },
    };
  };

  const broadcast = (event: string, data: unknown): void => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const client of clients) client.write(frame);
  };

  const compare = (): void => {
    if (clients.size === 0) return;
    let current: ReturnType<typeof read>;
    try {
      current = read();
    } catch (error) {
      logger.warn({ err: error }, 'live view: could not read the status');
      return;
    }
    const previous = last ?? { models: new Map(), training: new Map() };
    last = current.snapshot;
    const changedModels = current.status.models.filter(
      (m) => previous.models.get(m.model_id) !== current.snapshot.models.get(m.model_id),
    );
    const removed = [...previous.models.keys()].filter((id) => !current.snapshot.models.has(id));
    if (changedModels.length > 0 || removed.length > 0)
      broadcast('models', { changed: changedModels, removed });
    const changedTraining = current.status.training.filter(
      (t) => previous.training.get(t.config_key) !== current.snapshot.training.get(t.config_key),
    );
    if (changedTraining.length > 0) broadcast('training', { changed: changedTraining });
  };

  const compareSoon = (): void => {
    if (soon) return;
    soon = true;
    setImmediate(() => {
      soon = false;
      compare();
    });
  };

  const start = (): void => {
    last = read().snapshot;
    ticker = setInterval(compare, intervalMs);
    ticker.unref();
    heartbeat = setInterval(() => {
      for (const client of clients) client.write(': heartbeat\n\n');
    }, heartbeatMs);
    heartbeat.unref();
    unsubscribe = warden.bus.subscribe(`${warden.prefix}.evt.>`, (message) => {
      if (clients.size === 0) return;
      broadcast('event', { subject: message.subject, payload: message.data });
      compareSoon();
    });
  };

  const stop = (): void => {
    if (ticker) clearInterval(ticker);
    if (heartbeat) clearInterval(heartbeat);
    ticker = heartbeat = null;
    unsubscribe?.();
    unsubscribe = null;
    last = null;
  };

  return {
    get clients() {
      return clients.size;
    },
    attach(response) {
      response.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      if (clients.size === 0) start();
      clients.add(response);
      // The page loads the status after this line, so nothing that changes from here on is missed.
      response.write(`event: ready\ndata: {}\n\n`);
      response.on('close', () => {
        clients.delete(response);
        if (clients.size === 0) stop();
      });
    },
    close() {
      for (const client of clients) {
        client.end();
        client.socket?.destroy();
      }
      clients.clear();
      stop();
    },
  };
}
