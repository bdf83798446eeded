import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import type { SharedNats } from './shared-nats.ts';

/** A publication a client sent, as the proxy parsed it. */
export interface Publication {
  readonly subject: string;
  /** Headers and payload, as text. */
  readonly body: string;
}

/**
 * A TCP proxy in front of nats-server that loses one answer on purpose, as when the server or the network
 * fails with a reply on its way. Armed with `cutAfter(match)`, it forwards the first publication that
 * matches, makes sure the server has taken it (a PING behind it, answered), and cuts both connections
 * before the client hears anything more: what the server did with the publication stands (a KV write
 * lands), and the client never hears its answer. The client reconnects through the proxy as usual.
 *
 * Client-to-server bytes are forwarded whole operations at a time (the NATS protocol's PUB and HPUB carry
 * their size), so that the cut falls right after the matching one.
 */
export class CuttingProxy {
  private armed: { match: (p: Publication) => boolean; cut: (p: Publication) => void } | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: { host: string; port: number }): Promise<CuttingProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');
    const proxy = new CuttingProxy(server, `nats://127.0.0.1:${address.port}`);
    server.on('connection', (client) => proxy.pipe(client, target));
    return proxy;
  }

  /** Resolves with the publication after which both connections were cut. */
  cutAfter(match: (p: Publication) => boolean): Promise<Publication> {
    return new Promise((cut) => (this.armed = { match, cut }));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private pipe(client: Socket, target: { host: string; port: number }): void {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => undefined);
    }
    let cutting: ((chunk: Buffer) => void) | null = null;
    upstream.on('data', (chunk: Buffer) => (cutting ? cutting(chunk) : client.write(chunk)));
    upstream.on('close', () => client.destroy());
    client.on('close', () => {
      if (!cutting) upstream.destroy();
    });
    let pending = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      if (cutting) return;
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const op = nextOperation(pending);
        if (op === null) return;
        const frame = pending.subarray(0, op.length);
        pending = pending.subarray(op.length);
        upstream.write(frame);
        const armed = this.armed;
        if (!op.publication || !armed || !armed.match(op.publication)) continue;
        this.armed = null;
        // The client hears nothing more; the server is asked for a PONG, which it sends only after the
        // publication (it handles a connection's operations in order), and then that connection goes too.
        client.destroy();
        let answered = '';
        cutting = (reply) => {
          answered += reply.toString('latin1');
          if (!answered.includes('PONG\r\n')) return;
          upstream.destroy();
          armed.cut(op.publication!);
        };
        upstream.write('PING\r\n');
        return;
      }
    });
  }
}

/** The first whole client operation in `bytes` (its length, and what it publishes), or null if incomplete. */
function nextOperation(bytes: Buffer): { length: number; publication?: Publication } | null {
  const lineEnd = bytes.indexOf('\r\n');
  if (lineEnd < 0) return null;
  const line = bytes.subarray(0, lineEnd).toString('latin1');
  const [verb, ...args] = line.split(' ').filter((t) => t.length > 0);
  const op = verb?.toUpperCase();
  if (op !== 'PUB' && op !== 'HPUB') return { length: lineEnd + 2 };
  const size = Number(args.at(-1));
  const length = lineEnd + 2 + size + 2;
  if (bytes.length < length) return null;
  return {
    length,
    publication: {
      subject: args[0]!,
      body: bytes.subarray(lineEnd + 2, lineEnd + 2 + size).toString('utf8'),
    },
  };
}

/** A proxy in front of the file's shared nats-server, started before its tests and closed after them. */
export function useCuttingProxy(nats: SharedNats): { readonly proxy: CuttingProxy } {
  const shared = {} as { proxy: CuttingProxy };
  beforeAll(async () => {
    shared.proxy = await CuttingProxy.start({ host: '127.0.0.1', port: nats.server.port });
  });
  afterAll(async () => {
    await shared.proxy?.close();
  });
  return shared;
}
