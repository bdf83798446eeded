import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ActorKind } from '../actors/ports.ts';
import type { RuntimeObserver } from '../actors/runtime.ts';
import type { Warden } from '../warden.ts';

/**
 * Which actors took an input: the runtime's observer says so for every input, at no cost while nobody
 * listens. The live view then reads the status of those actors only, not of every model.
 */
export interface ChangeFeed {
  /** The observer to give the runtime (WardenDeps.observer), passing everything on to `base`. */
  wrap(base?: RuntimeObserver): RuntimeObserver;
  listen(listener: (kind: ActorKind, key: string) => void): () => void;
}

export function createChangeFeed(): ChangeFeed {
  const listeners = new Set<(kind: ActorKind, key: string) => void>();
  return {
    wrap(base = {}) {
      return {
        ...base,
        outcome(kind, key, event, outcome) {
          base.outcome?.(kind, key, event, outcome);
          for (const listener of listeners) listener(kind, key);
        },
      };
    },
    listen(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export interface LiveOptions {
  /** Where the hub hears which actors changed; without it, it compares every status each `intervalMs`. */
  readonly changes?: ChangeFeed | undefined;
  /**
   * Without a change feed: how often every status is compared with what was last sent. With one: how often
   * changed actors are read (their changes are gathered meanwhile).
   */
  readonly intervalMs?: number;
  /**
   * With a change feed, every status is still compared this often, for what no input here announced: an
   * actor another instance changed without publishing anything (NATS mode).
   */
  readonly fullEveryMs?: number;
  /** A comment line this often, so that a client can tell a quiet stream from a dead one. */
  readonly heartbeatMs?: number;
  /** Milliseconds for measuring how long a full comparison took (default `performance.now`; tests). */
  readonly now?: () => number;
}

/**
 * The full comparison is a safety net: it waits at least this many times as long as the last one took
 * before it runs again, so that it never holds the event loop for more than about 1/20 of the time. At
 * 100,000 persisted models one takes about a second; at a million, several.
 */
const FULL_COMPARISON_SPACING = 20;

/** What may wait unsent for one client before it is dropped. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

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
 * A change is found by comparing a status with what was last sent: for the actors that took an input here
 * (the change feed) and the models and configs named by bus events, within `intervalMs` (100 ms); and for
 * every model each `fullEveryMs` (5 s), which catches what another instance changed silently. Reading
 * every status of 10,000 models takes about 0.15 s, so it is not done on every change, and it is spaced out
 * further when it takes long (FULL_COMPARISON_SPACING).
 */
export function createLiveHub(warden: Warden, logger: Logger, options: LiveOptions = {}): LiveHub {
  const changes = options.changes;
  const intervalMs = options.intervalMs ?? (changes ? 100 : 400);
  const fullEveryMs = options.fullEveryMs ?? 5000;
  const heartbeatMs = options.heartbeatMs ?? 5000;
  const clients = new Set<ServerResponse>();
  let last: Snapshot | null = null;
  let ticker: NodeJS.Timeout | null = null;
  let heartbeat: NodeJS.Timeout | null = null;
  let soon = false;
  let unsubscribe: (() => void) | null = null;
  let unlisten: (() => void) | null = null;
  const pending = { model: new Set<string>(), training: new Set<string>() };
  let flushTimer: NodeJS.Timeout | null = null;

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
    for (const client of clients) {
      // A client that does not read (a stalled tab) is dropped rather than buffered for without bound: it
      // reconnects by itself and reloads everything.
      if (client.writableLength > MAX_BUFFERED_BYTES) client.destroy();
      else client.write(frame);
    }
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

  /** Reads the status of the actors that changed since the last look, and sends what differs. */
  const flushPending = (): void => {
    flushTimer = null;
    if (clients.size === 0 || last === null) return;
    const changedModels = [];
    const removed: string[] = [];
    for (const id of pending.model) {
      let json: string | undefined;
      let status;
      try {
        status = warden.status(id).models[0];
        json = JSON.stringify(status);
      } catch {
        // Gone (or never created): nothing to show.
      }
      if (json === undefined) {
        if (last.models.delete(id)) removed.push(id);
      } else if (last.models.get(id) !== json) {
        last.models.set(id, json);
        changedModels.push(status);
      }
    }
    const changedTraining = [];
    for (const key of pending.training) {
      let status;
      try {
        status = warden.trainingStatus(key);
      } catch {
        continue; // not a config key (a foreign event on the bus)
      }
      const json = JSON.stringify(status);
      if (last.training.get(key) !== json) {
        last.training.set(key, json);
        changedTraining.push(status);
      }
    }
    pending.model.clear();
    pending.training.clear();
    if (changedModels.length > 0 || removed.length > 0)
      broadcast('models', { changed: changedModels, removed });
    if (changedTraining.length > 0) broadcast('training', { changed: changedTraining });
  };

  const mark = (kind: ActorKind, key: string): void => {
    pending[kind].add(key);
    if (flushTimer === null) {
      flushTimer = setTimeout(flushPending, intervalMs);
      flushTimer.unref();
    }
  };

  const now = options.now ?? (() => performance.now());
  const compareLater = (delayMs: number): void => {
    const every = changes ? fullEveryMs : intervalMs;
    ticker = setTimeout(() => {
      const started = now();
      compare();
      if (ticker !== null) compareLater(Math.max(every, (now() - started) * FULL_COMPARISON_SPACING));
    }, delayMs);
    ticker.unref();
  };

  const start = (): void => {
    last = read().snapshot;
    compareLater(changes ? fullEveryMs : intervalMs);
    if (changes) unlisten = changes.listen(mark);
    heartbeat = setInterval(() => {
      for (const client of clients) client.write(': heartbeat\n\n');
    }, heartbeatMs);
    heartbeat.unref();
    unsubscribe = warden.bus.subscribe(`${warden.prefix}.evt.>`, (message) => {
      if (clients.size === 0) return;
      broadcast('event', { subject: message.subject, payload: message.data });
      if (!changes) return compareSoon();
      // Another instance's change is announced here too: read what the event names.
      const payload = (message.data ?? {}) as { model_id?: unknown; config_key?: unknown };
      if (typeof payload.model_id === 'string') mark('model', payload.model_id);
      if (typeof payload.config_key === 'string') mark('training', payload.config_key);
    });
  };

  const stop = (): void => {
    if (ticker) clearTimeout(ticker);
    if (heartbeat) clearInterval(heartbeat);
    if (flushTimer) clearTimeout(flushTimer);
    ticker = heartbeat = flushTimer = null;
    unsubscribe?.();
    unlisten?.();
    unsubscribe = unlisten = null;
    pending.model.clear();
    pending.training.clear();
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
