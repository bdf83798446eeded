import { rememberedId } from './remembered-id.ts';

/**
 * Persisted snapshots name the machine version that wrote them. A snapshot of an earlier version is brought
 * to the current one before it is restored; each step says what changed between two versions.
 */
export interface StoredSnapshot {
  readonly machine?: string;
  readonly snapshot?: { readonly value?: unknown; readonly context?: Record<string, unknown> };
}

type Migration = (stored: StoredSnapshot) => StoredSnapshot;

/**
 * model.v1 (one step function behind guards named leadsTo) to model.v2 (guards and actions named after the
 * policy): the same states and the same context; inputs kept during a rollback may be absent (none kept).
 * model.v2 to model.v3: the recent input ids are remembered as rememberedId has them (long ones digested).
 * training.v1 to training.v2: the same states and context.
 */
const MIGRATIONS: Record<string, { readonly to: string; readonly migrate: Migration }> = {
  'model.v1': {
    to: 'model.v2',
    migrate: (stored) => ({
      machine: 'model.v2',
      snapshot: {
        ...stored.snapshot,
        context: { ...stored.snapshot?.context, deferred: stored.snapshot?.context?.deferred ?? [] },
      },
    }),
  },
  'model.v2': {
    to: 'model.v3',
    migrate: (stored) => {
      const context = stored.snapshot?.context;
      const ids = context?.recentInputIds;
      return {
        machine: 'model.v3',
        snapshot: {
          ...stored.snapshot,
          context: {
            ...context,
            recentInputIds: Array.isArray(ids)
              ? ids.map((id) => (typeof id === 'string' ? rememberedId(id) : id))
              : ids,
          },
        },
      };
    },
  },
  'training.v1': { to: 'training.v2', migrate: (stored) => ({ ...stored, machine: 'training.v2' }) },
};

/** The snapshot for machine `current`, or null when it was written by a machine this build cannot read. */
export function migrateSnapshot(stored: StoredSnapshot, current: string): StoredSnapshot | null {
  let at = stored;
  for (let hops = 0; at.machine !== current; hops++) {
    const step = at.machine === undefined ? undefined : MIGRATIONS[at.machine];
    if (!step || hops > 10) return null;
    at = step.migrate(at);
  }
  return at;
}
