import type { ModelRegistry } from '../../src/actors/ports.ts';

/** `inner` with some of its calls replaced; the others go to `inner` (a test's fault or hold, say). */
export function registryWith(inner: ModelRegistry, replaced: Partial<ModelRegistry>): ModelRegistry {
  return {
    recordPromotion: replaced.recordPromotion ?? ((...args) => inner.recordPromotion(...args)),
    rollback: replaced.rollback ?? ((request) => inner.rollback(request)),
    production: replaced.production ?? ((modelId) => inner.production(modelId)),
  };
}
