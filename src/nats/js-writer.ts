import { JetStreamApiError, JetStreamError, type ApiError } from '@nats-io/jetstream';
import {
  ClosedConnectionError,
  createInbox,
  headers,
  TimeoutError,
  type Msg,
  type NatsConnection,
} from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { systemClock, type Clock } from '../actors/ports.ts';
import { isWrongRevision } from './kv-util.ts';

/** What JetStream answers a publication: its sequence in the stream, or why it was refused. */
interface PubAckReply {
  readonly seq?: number;
  readonly duplicate?: boolean;
  readonly error?: ApiError;
}

interface Waiting {
  readonly subject: string;
  readonly resolve: (ack: PubAck) => void;
  readonly reject: (error: Error) => void;
  readonly timer: unknown;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EXPECTED_LAST_SUBJECT_SEQUENCE = 'Nats-Expected-Last-Subject-Sequence';
const MSG_ID = 'Nats-Msg-Id';
/** What NATS KV takes as a key: these characters, not starting or ending with a dot. */
const KV_KEY = /^[-/=\w]+(?:\.[-/=\w]+)*$/;

/** A publication stored: its sequence in the stream, and whether the stream had its message id already. */
export interface PubAck {
  readonly seq: number;
  readonly duplicate: boolean;
}

/**
 * Warden's own JetStream writes (revision-checked KV writes, publications of events), whose answers come
 * back on one reply subscription of its own. nats.js's `request`, under `kv.update` and `js.publish`, makes
 * a request object, a timer and an `Error` with its stack trace for every request, the last even after the
 * answer came (nats.js 3.4, `RequestOne.cancel`): 35-38 µs of CPU per KV update against 15-20 this way
 * (scratch measurement: 1.5 KB values, 1,000 in flight), and every state commit in NATS mode is one.
 * Failures are the library's own types (a refused write is a `JetStreamApiError`, so `isWrongRevision` and
 * `isTransient` read them as before).
 */
export class JetStreamWriter {
  private readonly inbox = createInbox();
  private readonly waiting = new Map<string, Waiting>();
  private sent = 0;
  /** The reply subscription ended (the connection closed): nothing sent now would be answered. */
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
    private readonly clock: Clock = systemClock,
  ) {
    const subscription = nc.subscribe(`${this.inbox}.*`, {
      callback: (error, message) => {
        if (!error) this.answer(message);
      },
    });
    // The connection closed: nothing more will be answered.
    void subscription.closed.then(() => this.failAll());
  }

  /**
   * Publishes `data` to `subject` if the subject's last message is still at stream sequence `expected` (0:
   * there is none); resolves with the new message's sequence.
   */
  async update(subject: string, data: string, expected: number): Promise<number> {
    return (await this.publish(subject, encoder.encode(data), { expected })).seq;
  }

  /**
   * Publishes `data` to the stream that takes `subject`, once it is stored. `msgId`: the message id the
   * stream deduplicates by (`duplicate` in the answer: it had it already); `expected`: as for `update`.
   */
  publish(
    subject: string,
    data: Uint8Array,
    options: { readonly msgId?: string; readonly expected?: number } = {},
  ): Promise<PubAck> {
    if (this.closed) return Promise.reject(new ClosedConnectionError());
    const token = (++this.sent).toString(36);
    const h = headers();
    if (options.msgId !== undefined) h.set(MSG_ID, options.msgId);
    if (options.expected !== undefined) h.set(EXPECTED_LAST_SUBJECT_SEQUENCE, String(options.expected));
    return new Promise<PubAck>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.waiting.delete(token);
        reject(new TimeoutError());
      }, this.timeoutMs);
      this.waiting.set(token, { subject, resolve, reject, timer });
      try {
        this.nc.publish(subject, data, { reply: `${this.inbox}.${token}`, headers: h });
      } catch (error) {
        // Closed or draining: refused before anything went out.
        this.clock.clearTimeout(timer);
        this.waiting.delete(token);
        reject(error as Error);
      }
    });
  }

  private answer(message: Msg): void {
    const token = message.subject.slice(this.inbox.length + 1);
    const waiting = this.waiting.get(token);
    if (!waiting) return; // timed out already
    this.waiting.delete(token);
    this.clock.clearTimeout(waiting.timer);
    if (message.data.length === 0 && message.headers?.code === 503) {
      waiting.reject(new JetStreamError(`no JetStream stream answered for ${waiting.subject}`));
      return;
    }
    let reply: PubAckReply;
    try {
      reply = JSON.parse(decoder.decode(message.data)) as PubAckReply;
    } catch (error) {
      waiting.reject(
        new JetStreamError('JetStream answered with something that is not JSON', { cause: error }),
      );
      return;
    }
    if (reply.error) waiting.reject(new JetStreamApiError(reply.error));
    else if (typeof reply.seq === 'number')
      waiting.resolve({ seq: reply.seq, duplicate: reply.duplicate === true });
    else waiting.reject(new JetStreamError('JetStream answered without a sequence'));
  }

  private failAll(): void {
    this.closed = true;
    for (const waiting of this.waiting.values()) {
      this.clock.clearTimeout(waiting.timer);
      waiting.reject(new ClosedConnectionError());
    }
    this.waiting.clear();
  }
}

/** A revision-checked write of a key (expected 0: the key holds nothing yet), resolving with its revision. */
export type KvWrite = (key: string, json: string, expected: number) => Promise<number>;

/**
 * The revision-checked writes of one bucket's keys, through `writer`; `watch` bounds each by the connection
 * it went out on (see LostAnswers). A key that exists only as a delete marker refuses "nothing yet": that
 * write goes through `kv.create`, which knows to write over the marker.
 */
export function kvWrites(
  writer: JetStreamWriter,
  kv: Pick<KV, 'create'>,
  bucket: string,
  watch: <T>(request: Promise<T>) => Promise<T> = (request) => request,
): KvWrite {
  return async (key, json, expected) => {
    // As kv.update checks: a key that is not one (a wildcard, a space) is refused here, not sent as a subject.
    if (!KV_KEY.test(key)) throw new Error(`invalid KV key "${key}" for bucket ${bucket}`);
    try {
      return await watch(writer.update(`$KV.${bucket}.${key}`, json, expected));
    } catch (error) {
      if (expected !== 0 || !isWrongRevision(error)) throw error;
      return await kv.create(key, json);
    }
  };
}
