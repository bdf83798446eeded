import { afterAll, beforeAll } from 'vitest';
import { startNatsServer, type NatsServer, type NatsServerOptions } from './nats-server.ts';
import { connectClient, type TestClient } from './nats-client.ts';

export interface SharedNats {
  readonly server: NatsServer;
  readonly client: TestClient;
}

/**
 * One nats-server (JetStream, free port, own store directory) and one client for a whole test file,
 * started before its tests and disposed after them. Read `server` and `client` inside tests only.
 */
export function useSharedNats(options: NatsServerOptions = {}): SharedNats {
  const shared = {} as { server: NatsServer; client: TestClient };
  beforeAll(async () => {
    shared.server = await startNatsServer(options);
    shared.client = await connectClient(shared.server.url);
  });
  afterAll(async () => {
    await shared.client?.close();
    await shared.server?.[Symbol.asyncDispose]();
  });
  return shared;
}
