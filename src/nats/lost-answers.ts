import { WardenError } from '../domain/errors.ts';

/**
 * A request whose connection is lost is never answered: nats-server answers on the connection the request
 * came on. nats.js keeps waiting for such an answer until the request's timeout (5 s by default), which
 * held a commit, and every input of its model behind it, that long after any blip (seen in
 * test/nats/lost-reply.test.ts). So does a request made while the client is reconnecting (nats.js 3.4:
 * seen in test/nats/lost-answers.test.ts). Requests watched here fail as `unavailable` (retryable) as soon
 * as the connection they went out on is lost, and at once when made while it is: what they asked may have
 * been carried out (a publication buffered for the next connection still goes out), and the callers treat
 * it as a write that got no answer.
 */
export class LostAnswers {
  private connected = true;
  private readonly waiting = new Set<(error: Error) => void>();

  /** The connection was lost: what went out on it fails. */
  lost(): void {
    this.connected = false;
    const failing = [...this.waiting];
    this.waiting.clear();
    for (const fail of failing) fail(lostError());
  }

  reconnected(): void {
    this.connected = true;
  }

  /** The connection is closed for good: nothing more will be answered. */
  closed(): void {
    this.lost();
  }

  /** The request's outcome, or a failure once the connection it goes out on is lost (at once if it is). */
  watch<T>(request: Promise<T>): Promise<T> {
    if (!this.connected) {
      request.catch(() => undefined); // its own late failure is not an unhandled rejection
      return Promise.reject(lostError());
    }
    return new Promise<T>((resolve, reject) => {
      this.waiting.add(reject);
      request.then(
        (value) => {
          this.waiting.delete(reject);
          resolve(value);
        },
        (error: unknown) => {
          this.waiting.delete(reject);
          reject(error);
        },
      );
    });
  }
}

function lostError(): WardenError {
  return new WardenError(
    'unavailable',
    'the connection to NATS was lost before the answer came; the request may have been carried out',
    { retryable: true },
  );
}

/** The requests of a KV bucket handle that read or write one key. */
export const KV_REQUESTS: ReadonlySet<string> = new Set([
  'get',
  'put',
  'create',
  'update',
  'delete',
  'purge',
]);
/** A JetStream publication, answered by the stream's acknowledgement. */
export const JETSTREAM_REQUESTS: ReadonlySet<string> = new Set(['publish']);

/**
 * The handle (a KV bucket, a JetStream client), with the named requests failing as soon as their connection
 * is lost (see LostAnswers); everything else is the handle's own.
 */
export function withLostAnswers<T extends object>(
  handle: T,
  requests: ReadonlySet<string>,
  answers: LostAnswers,
): T {
  return new Proxy(handle, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (typeof property === 'string' && requests.has(property))
        return (...args: unknown[]) => answers.watch(method.apply(target, args) as Promise<unknown>);
      return method.bind(target);
    },
  });
}
