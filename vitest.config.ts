import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Property tests report a failure found late with its counterexample, not as a timeout.
    setupFiles: ['test/harness/property-budget.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Integration tests spawn their own nats-server and processes; two cores, so keep it modest.
    maxWorkers: 2,
  },
});
