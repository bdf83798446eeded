import type { ModelRegistry, ProductionPointer, RollbackRequest } from '../../src/actors/ports.ts';

interface PendingRollback {
  readonly request: RollbackRequest;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * A registry whose rollbacks wait until the test settles them, so a test can stop in rollingBack and choose
 * success or failure. `autoSettle` applies rollbacks at once.
 */
export class FakeRegistry implements ModelRegistry {
  readonly pointers = new Map<string, ProductionPointer>();
  readonly applied: RollbackRequest[] = [];
  readonly calls: RollbackRequest[] = [];
  private pending: PendingRollback[] = [];

  /** Promotion writes never finish (a registry that hangs, or a process about to die). */
  holdPromotions = false;

  constructor(public autoSettle = false) {}

  /** Promotion writes fail (a registry that refuses them). */
  failPromotions = false;

  async recordPromotion(modelId: string, version: string, at: number, reason: string): Promise<void> {
    if (this.holdPromotions) return new Promise(() => {});
    if (this.failPromotions) throw new Error('registry refused the write');
    this.pointers.set(modelId, { modelId, version, since: at, reason });
  }

  rollback(request: RollbackRequest): Promise<void> {
    this.calls.push(request);
    if (this.applied.some((r) => r.rollbackId === request.rollbackId)) return Promise.resolve();
    if (this.autoSettle) {
      this.apply(request);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.pending.push({ request, resolve, reject }));
  }

  async production(modelId: string): Promise<ProductionPointer | null> {
    return this.pointers.get(modelId) ?? null;
  }

  /** The process that asked died: its calls will never be answered. */
  abandonPending(): void {
    this.pending = [];
  }

  pendingCount(): number {
    return this.pending.length;
  }

  /** Settles the oldest pending rollback. */
  settle(outcome: 'succeed' | 'fail', error = 'registry unavailable'): RollbackRequest {
    const next = this.pending.shift();
    if (!next) throw new Error('FakeRegistry: no rollback is pending');
    if (outcome === 'succeed') {
      this.apply(next.request);
      next.resolve();
    } else {
      next.reject(new Error(error));
    }
    return next.request;
  }

  private apply(request: RollbackRequest): void {
    this.applied.push(request);
    this.pointers.set(request.modelId, {
      modelId: request.modelId,
      version: request.toVersion,
      since: request.at,
      reason: request.reason,
    });
  }
}
