import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import {
  connect,
  credsAuthenticator,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import type { Config } from '../config/schema.ts';
import { WardenError } from '../domain/errors.ts';
import { LostAnswers } from './lost-answers.ts';

/** How long an orderly close waits for NATS to take what is pending. */
export const DEFAULT_CLOSE_DEADLINE_MS = 5_000;

export interface NatsLink {
  readonly nc: NatsConnection;
  /** Connected now (false while reconnecting after a NATS restart, and after close). */
  connected(): boolean;
  /** Calls `listener` after each reconnection; returns the unsubscribe function. */
  onReconnect(listener: () => void): () => void;
  /** Fails requests whose connection is lost (see LostAnswers). */
  readonly answers: LostAnswers;
  /**
   * Drains the connection (pending publications and acknowledgements are flushed first), and closes it
   * outright when that takes longer than `deadlineMs` (NATS down).
   */
  close(deadlineMs?: number): Promise<void>;
}

/** The servers (comma-separated URLs), with credentials taken out of any `user:pass@` or `token@` part. */
export function connectionOptions(settings: Config['nats'], name: string): ConnectionOptions {
  const options: ConnectionOptions = {
    name,
    // Never give up: after a NATS restart the service reconnects and carries on.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
    waitOnFirstConnect: true,
    pingInterval: 10_000,
    maxPingOut: 3,
    // An Error per request only to improve stack traces costs more than the request itself at volume.
    noAsyncTraces: true,
  };
  const servers: string[] = [];
  for (const raw of (settings.url ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)) {
    const withScheme = raw.includes('://') ? raw : `nats://${raw}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new WardenError('invalid_config', `nats.url: expected nats://host:port, received "${raw}"`);
    }
    if (url.username && options.user === undefined && options.token === undefined) {
      const user = decodeURIComponent(url.username);
      if (url.password) {
        options.user = user;
        options.pass = decodeURIComponent(url.password);
      } else {
        options.token = user;
      }
    }
    servers.push(`${url.hostname.includes(':') ? `[${url.hostname}]` : url.hostname}:${url.port || '4222'}`);
  }
  if (servers.length === 0) throw new WardenError('invalid_config', 'nats.url: expected at least one server');
  options.servers = servers;
  if (settings.user !== undefined) {
    options.user = settings.user;
    options.pass = settings.pass;
  }
  if (settings.token !== undefined) options.token = settings.token;
  if (settings.credsFile !== undefined) {
    const file = settings.credsFile;
    // Read on every (re)connect, so that rotated credentials are picked up.
    options.authenticator = credsAuthenticator(() => new Uint8Array(readFileSync(file)));
  }
  return options;
}

/** Where to connect, without credentials, for logs. */
export function describeServers(settings: Config['nats']): string {
  return (settings.url ?? '').replace(/\/\/[^@/]*@/g, '//');
}

export async function connectNats(
  settings: Config['nats'],
  logger: Logger,
  name = 'warden',
): Promise<NatsLink> {
  const nc = await connect(connectionOptions(settings, name));
  let connected = true;
  const reconnectListeners = new Set<() => void>();
  const answers = new LostAnswers();
  const log = logger.child({ nats: describeServers(settings) });
  log.info({ server: nc.getServer() }, 'connected to NATS');
  void (async () => {
    for await (const status of nc.status()) {
      switch (status.type) {
        case 'disconnect':
          connected = false;
          answers.lost();
          log.warn({ server: status.server }, 'disconnected from NATS; reconnecting');
          break;
        case 'reconnect':
          connected = true;
          answers.reconnected();
          log.info({ server: status.server }, 'reconnected to NATS');
          for (const listener of reconnectListeners) listener();
          break;
        case 'error':
          log.error({ err: status.error }, 'NATS reported an error');
          break;
        default:
          break;
      }
    }
  })().catch(() => undefined);
  void nc.closed().then((error) => {
    connected = false;
    answers.closed();
    if (error) log.error({ err: error }, 'NATS connection closed with an error');
  });
  return {
    nc,
    answers,
    connected: () => connected && !nc.isClosed(),
    onReconnect(listener) {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },
    async close(deadlineMs = DEFAULT_CLOSE_DEADLINE_MS) {
      if (nc.isClosed()) return;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), deadlineMs);
      });
      try {
        const drained = connected
          ? await Promise.race([nc.drain().then(() => 'drained' as const), late])
          : 'late';
        if (drained === 'late') {
          log.warn({ deadlineMs }, 'NATS did not drain in time; closing the connection');
          await nc.close();
        }
      } catch {
        await nc.close().catch(() => undefined);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
