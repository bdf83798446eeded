import type { RollbackRequest } from '../actors/ports.ts';

/** A production pointer as a registry stores it. */
export interface StoredPointer {
  readonly version: string;
  /** Epoch ms. */
  readonly since: number;
  /** The rollback that set it; null after a promotion. */
  readonly rollbackId: string | null;
}

/**
 * What a rollback does to the pointer it finds, the same rule for every registry:
 * - `done`: this rollback set it already (a redelivery, a restart mid-way);
 * - `apply`: it is at the version rolled back from, already at the target, or still at a version Warden
 *   promoted before fromVersion and not moved since (Warden's own promotion writes lost in a crash: it
 *   lags, nobody moved it);
 * - otherwise the reason it is refused: someone else moved it after fromVersion was promoted.
 */
export function rollbackOver(
  pointer: StoredPointer | null,
  request: RollbackRequest,
): 'done' | 'apply' | { refused: string } {
  if (pointer === null) return 'apply';
  if (pointer.rollbackId === request.rollbackId) return 'done';
  if (pointer.version === request.fromVersion || pointer.version === request.toVersion) return 'apply';
  const promotion = request.fromPromotion;
  if (promotion && pointer.since <= promotion.at && promotion.earlier.includes(pointer.version))
    return 'apply';
  return {
    refused: `registry: expected ${request.modelId} to be at ${request.fromVersion} in production, found ${pointer.version}`,
  };
}
