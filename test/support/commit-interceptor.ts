import type { CommitBatch, PartResult, StateStore } from '../../src/actors/ports.ts';

/**
 * The store with each part of its commits seen first by `refuse`: an Error refuses that part (as a KV write
 * refused, NATS gone mid-commit, a disk failing), null lets the real store commit it. Everything else is the
 * store's own.
 */
export function interceptCommits(inner: StateStore, refuse: (part: CommitBatch) => Error | null): StateStore {
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'commitEach') {
        return (parts: readonly CommitBatch[]): Promise<PartResult[]> =>
          Promise.all(
            parts.map(async (part): Promise<PartResult> => {
              const error = refuse(part);
              if (error) return { ok: false, error };
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
