import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';

export interface StoredMessage {
  readonly subject: string;
  readonly data: unknown;
  readonly seq: number;
  /** Its JetStream message id (the `Nats-Msg-Id` header), if it was published with one. */
  readonly msgId?: string;
}

export interface TestClient extends AsyncDisposable {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Publishes through JetStream: resolves once the stream has stored it. Strings and bytes go as they are. */
  publish(subject: string, payload: unknown): Promise<void>;
  /** A command: request/reply with a JSON body, the reply parsed. */
  request<T = Record<string, unknown>>(subject: string, body?: unknown, timeoutMs?: number): Promise<T>;
  /** Every message in a stream (default: the audit log) whose subject matches `filter`, oldest first. */
  stored(filter?: string, stream?: string): Promise<StoredMessage[]>;
  /** A KV value, parsed (null when absent). */
  kv<T = Record<string, unknown>>(bucket: string, key: string): Promise<T | null>;
  close(): Promise<void>;
}

function encode(payload: unknown): Uint8Array | string {
  return typeof payload === 'string' || payload instanceof Uint8Array ? payload : JSON.stringify(payload);
}

/** A NATS client for tests: a producer, an operator or a trainer, with or without credentials. */
export async function connectClient(
  url: string,
  auth: { user?: string; pass?: string } = {},
): Promise<TestClient> {
  // nats.conf lets each user read its own reply inboxes only (`_INBOX_<user>.>`).
  const inboxPrefix = auth.user === undefined ? {} : { inboxPrefix: `_INBOX_${auth.user}` };
  const nc = await connect({
    servers: url,
    ...auth,
    ...inboxPrefix,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
  });
  const js = jetstream(nc);
  // No API check on connect: a producer may not call $JS.API.INFO.
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  const kvm = new Kvm(js);
  const close = async () => {
    if (!nc.isClosed()) await nc.close();
  };
  return {
    nc,
    js,
    jsm,
    async publish(subject, payload) {
      await js.publish(subject, encode(payload));
    },
    async request<T>(subject: string, body?: unknown, timeoutMs = 5_000): Promise<T> {
      const reply = await nc.request(subject, body === undefined ? '' : encode(body), { timeout: timeoutMs });
      return reply.json<T>();
    },
    async stored(filter = 'warden.evt.>', stream = 'WARDEN_EVENTS') {
      const info = await jsm.streams.info(stream, { subjects_filter: filter });
      const total = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
      if (total === 0) return [];
      const consumer = await js.consumers.get(stream, { filter_subjects: filter });
      const out: StoredMessage[] = [];
      for (let round = 0; out.length < total && round < 20; round++) {
        const batch = await consumer.fetch({ max_messages: total - out.length, expires: 1_000 });
        for await (const m of batch) {
          let data: unknown;
          try {
            data = m.json();
          } catch {
            data = m.string();
          }
          const msgId = m.headers?.get('Nats-Msg-Id');
          out.push({ subject: m.subject, data, seq: m.seq, ...(msgId ? { msgId } : {}) });
        }
      }
      await consumer.delete().catch(() => undefined);
      return out;
    },
    async kv<T>(bucket: string, key: string): Promise<T | null> {
      const store = await kvm.open(bucket);
      const entry = await store.get(key);
      return entry && entry.operation === 'PUT' ? entry.json<T>() : null;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
