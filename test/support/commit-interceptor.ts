import type { CommitBatch, PartResult, StateStore } from '../../src/actors/ports.ts';

/** A part refused with its outcome in doubt: nothing was written, but the runtime cannot know that. */
export interface UnansweredPart {
  readonly error: Error;
  readonly outcomeUnknown: true;
}

/**
 * The store with each part of its commits seen first by `refuse`: an Error refuses that part (as a KV write
 * refused, NATS gone mid-commit, a disk failing), an UnansweredPart refuses it with its outcome in doubt (a
 * request that never reached NATS), null lets the real store commit it. Everything else is the store's own.
 */
export function interceptCommits(
  inner: StateStore,
  refuse: (part: CommitBatch) => Error | UnansweredPart | null,
): StateStore {
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'commitEach') {
        return (parts: readonly CommitBatch[]): Promise<PartResult[]> =>
          Promise.all(
            parts.map(async (part): Promise<PartResult> => {
              const refused = refuse(part);
              if (refused instanceof Error) return { ok: false, error: refused };
              if (refused) return { ok: false, error: refused.error, outcomeUnknown: true };
              const [result] = await target.commitEach!([part]);
              return result!;
            }),
          );
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
