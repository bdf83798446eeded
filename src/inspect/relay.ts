import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { WebSocketServer, WebSocket } from 'ws';
import { bridgePage } from './page.ts';

export interface RelayOptions {
  readonly host?: string;
  readonly port: number;
  /** The Stately inspector UI the page frames. */
  readonly inspectorUrl?: string;
  /** Warden's HTTP port, for the page's pointer to the dashboard. */
  readonly dashboardPort?: number | undefined;
  /** Browser origins allowed besides the relay's own page (e.g. "https://warden.example:8090"). */
  readonly allowedOrigins?: readonly string[];
  /** How long the page waits for the inspector before it says stately.ai cannot be reached. */
  readonly readyTimeoutMs?: number;
}

/**
 * Whether a browser's WebSocket may connect. Connections without an Origin are not from a browser (Warden's
 * own inspector); a browser must come from the relay's own page, reached by an IP address, by localhost or
 * by the configured host name (a name a page chose itself could point at us: DNS rebinding), or from an
 * origin listed in allowedOrigins.
 */
export function originAllowed(
  origin: string | undefined,
  hostHeader: string | undefined,
  host: string,
  allowed: readonly string[] = [],
): boolean {
  if (origin === undefined) return true;
  if (allowed.includes(origin)) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (hostHeader === undefined || url.host !== hostHeader.toLowerCase()) return false;
  const name = url.hostname.replace(/^\[|\]$/g, '');
  return net.isIP(name) !== 0 || name === 'localhost' || name === host.toLowerCase();
}

export interface Relay {
  /** The page to open in a browser. */
  readonly pageUrl: string;
  /** Where the Warden sends its events. */
  readonly eventsUrl: string;
  close(): Promise<void>;
}

/**
 * A loopback relay between Warden's inspector and browsers: GET / serves the page, the WebSocket at
 * /events takes events from Warden and passes them to every other connection. A browser opened late
 * first gets each actor's registration and latest snapshot, so it sees every actor in its current state,
 * then live events. Its server is unref'd: it never holds the process open.
 */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const host = options.host ?? '127.0.0.1';
  // Warden itself connects locally even when the relay listens on every interface.
  const local = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const actors = new Map<string, string>();
  const snapshots = new Map<string, string>();
  const server = http.createServer((request, response) => {
    if (request.method === 'GET' && (request.url === '/' || request.url === '/index.html')) {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(
        bridgePage({
          inspectorUrl: options.inspectorUrl ?? 'https://stately.ai/inspect',
          dashboardPort: options.dashboardPort,
          readyTimeoutMs: options.readyTimeoutMs,
        }),
      );
      return;
    }
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: open / in a browser');
  });
  const sockets = new WebSocketServer({
    server,
    path: '/events',
    // A page from another origin must not read actor state (versions, reasons, who approved) or inject events.
    verifyClient: (
      { origin, req }: { origin?: string; req: http.IncomingMessage },
      done: (ok: boolean, code?: number, message?: string) => void,
    ) =>
      originAllowed(origin || undefined, req.headers.host, host, options.allowedOrigins)
        ? done(true)
        : done(
            false,
            403,
            `origin ${String(origin).slice(0, 200)} may not connect: open the relay's own page`,
          ),
  });

  const remember = (text: string): void => {
    try {
      const event = JSON.parse(text) as { type?: string; sessionId?: string };
      if (typeof event.sessionId !== 'string') return;
      if (event.type === '@xstate.actor') actors.set(event.sessionId, text);
      if (event.type === '@xstate.snapshot') snapshots.set(event.sessionId, text);
    } catch {
      // Not JSON: passed on, never replayed.
    }
  };

  sockets.on('connection', (socket) => {
    for (const text of actors.values()) socket.send(text);
    for (const text of snapshots.values()) socket.send(text);
    socket.on('message', (data) => {
      const text = data.toString();
      remember(text);
      for (const other of sockets.clients)
        if (other !== socket && other.readyState === WebSocket.OPEN) other.send(text);
    });
    socket.on('error', () => socket.terminate());
  });

  server.on('connection', (socket) => socket.unref());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  const { port } = server.address() as AddressInfo;
  const origin = `${local.includes(':') ? `[${local}]` : local}:${port}`;

  return {
    pageUrl: `http://${origin}/`,
    eventsUrl: `ws://${origin}/events`,
    async close() {
      for (const client of sockets.clients) client.terminate();
      sockets.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
