import net from 'node:net';
import tls from 'node:tls';
import WebSocket from 'ws';
import type { StatelyInspectionEvent } from '@statelyai/inspect';
import type { Logger } from 'pino';

export interface SocketAdapterOptions {
  readonly url: string;
  readonly logger: Logger;
  /** Events kept while (re)connecting; the oldest go first. */
  readonly maxBuffered?: number;
  readonly reconnectMs?: number;
}

/**
 * Opens the connection with its socket unref'd: an inspector must never be the reason the process stays
 * up. ws hands over `path` (the URL path), which for a TCP or TLS socket must be unset.
 */
function unrefConnector(secure: boolean) {
  return (options: Record<string, unknown>): net.Socket => {
    const host = String(options.host);
    const socket = secure
      ? tls.connect({
          ...options,
          path: undefined,
          servername: net.isIP(host) ? '' : host,
        } as tls.ConnectionOptions)
      : net.connect({ ...options, path: undefined } as unknown as net.NetConnectOpts);
    socket.unref();
    return socket;
  };
}

/**
 * The Stately inspector's transport for Node, written for a long-running service: it sends each event as
 * JSON over a WebSocket, buffers a bounded number while connecting, reconnects on an unref'd timer, and
 * stop() ends it at once (the package's own WebSocket adapter keeps retrying after stop and holds the
 * process open).
 */
export class SocketAdapter {
  private socket: WebSocket | null = null;
  private buffered: string[] = [];
  private retry: NodeJS.Timeout | null = null;
  private stopped = true;
  private warned = false;

  constructor(private readonly options: SocketAdapterOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.socket?.terminate();
    this.socket = null;
    this.buffered = [];
  }

  send(event: StatelyInspectionEvent): void {
    if (this.stopped) return;
    let text: string;
    try {
      text = JSON.stringify(event);
    } catch (error) {
      // This runs on a timer inside the inspector: a throw here would be an uncaught exception.
      this.options.logger.debug(
        { err: error, type: event.type },
        'Stately inspector: dropped an event that is not JSON',
      );
      return;
    }
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(text);
      return;
    }
    this.buffered.push(text);
    if (this.buffered.length > (this.options.maxBuffered ?? 1000)) this.buffered.shift();
  }

  private connect(): void {
    const secure = this.options.url.startsWith('wss:');
    const socket = new WebSocket(this.options.url, { createConnection: unrefConnector(secure) as never });
    this.socket = socket;
    socket.on('open', () => {
      this.warned = false;
      this.options.logger.info({ url: this.options.url }, 'Stately inspector connected');
      for (const text of this.buffered) socket.send(text);
      this.buffered = [];
    });
    socket.on('error', (error) => {
      if (!this.warned)
        this.options.logger.warn(
          { url: this.options.url, err: error },
          'Stately inspector: cannot reach the relay; retrying',
        );
      this.warned = true;
    });
    socket.on('close', () => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      this.retry = setTimeout(() => {
        this.retry = null;
        if (!this.stopped) this.connect();
      }, this.options.reconnectMs ?? 2000);
      this.retry.unref();
    });
  }
}
