import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Posted JSON, asserted field by field. */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON from the wire

export interface ReceivedRequest {
  readonly path: string;
  readonly body: Json;
  readonly headers: http.IncomingHttpHeaders;
  readonly status: number;
}

export interface Receiver {
  /** Base URL; each test uses its own path per route (`${url}/slack`). */
  readonly url: string;
  readonly received: ReceivedRequest[];
  /** The statuses answered next, in order; 200 once they are used up. */
  readonly statuses: number[];
  /** Requests answered 2xx on `path`. */
  accepted(path: string): ReceivedRequest[];
  close(): Promise<void>;
}

/** A local webhook receiver: records every request and answers with the scripted statuses. */
export async function startReceiver(): Promise<Receiver> {
  const received: ReceivedRequest[] = [];
  const statuses: number[] = [];
  const server = http.createServer((request, response) => {
    let data = '';
    request.on('data', (chunk) => (data += chunk));
    request.on('end', () => {
      const status = statuses.shift() ?? 200;
      received.push({
        path: request.url ?? '',
        body: JSON.parse(data) as Json,
        headers: request.headers,
        status,
      });
      response.writeHead(status).end(status === 200 ? 'ok' : 'try later');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    statuses,
    accepted: (path) => received.filter((r) => r.path === path && r.status < 300),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The alert a request carried, whatever the format (Slack's carries it as `warden_alert`). */
export const alertOf = (r: ReceivedRequest): Json => (r.body.warden_alert ?? r.body) as Json;

/** How many accepted requests each event id had: exactly once means every count is 1. */
export function countsByEvent(requests: readonly ReceivedRequest[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of requests) {
    const id = String(alertOf(r).event_id);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}
