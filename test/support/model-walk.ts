/**
 * What makes two model snapshots different for a walk of the model machine's graph (@xstate/graph): the
 * state and the parts of the context that decide which transitions an event can take, bounded so that the
 * graph stays finite. Shared by the model-based tests of the runtime and of the lab's flat stepper.
 */
import { deferredOf, lastKnownGood } from '../../src/machines/model-logic.ts';
import type { ModelContext } from '../../src/machines/model-types.ts';

export interface WalkOptions {
  /** Tell apart inputs kept during a rollback (none, one, more) and whether any input id is remembered. */
  readonly admission?: boolean;
}

export function abstractModelState(
  snapshot: { value: unknown; context: ModelContext },
  { admission = false }: WalkOptions = {},
): string {
  const c = snapshot.context;
  const key: unknown[] = [
    snapshot.value,
    Math.min(c.streak, 3),
    c.pending?.heldBecause ?? null,
    lastKnownGood(c) !== null,
    c.rollback !== null,
    c.lastRollback !== null,
    c.cooldownUntil !== null,
    Math.min(c.autoRollbacks.length, 3),
    Math.min(c.lineage.length, 3),
    c.announcedSeverity,
  ];
  if (admission) key.push(Math.min(deferredOf(c).length, 2), c.recentInputIds.length > 0);
  return JSON.stringify(key);
}
