import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, WebSocket } from 'ws';
import { bridgePage } from './page.ts';

export interface RelayOptions {
  readonly host?: string;
  readonly port: number;
  /** The Stately inspector UI the page frames. */
  readonly inspectorUrl?: string;
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
  const actors = new Map<string, string>();
  const snapshots = new Map<string, string>();
  const server = http.createServer((request, response) => {
    if (request.method === 'GET' && (request.url === '/' || request.url === '/index.html')) {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(bridgePage(options.inspectorUrl ?? 'https://stately.ai/inspect'));
      return;
    }
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: open / in a browser');
  });
  const sockets = new WebSocketServer({ server, path: '/events' });

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
  const origin = `${host.includes(':') ? `[${host}]` : host}:${port}`;

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
