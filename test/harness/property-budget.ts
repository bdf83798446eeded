import fc from 'fast-check';
import { beforeEach } from 'vitest';

/** The share of a test's timeout its properties may use, shrinking included. */
const SHARE = 0.8;

/**
 * A property that fails is shrunk, and shrinking can outlast the test's timeout: the runner then says only
 * "timed out", and the seed, the path and the counterexample are lost. Every property in the suite stops
 * at SHARE of its test's timeout instead, reported as a failure with what it has: the counterexample as
 * far as it was shrunk, or that it was interrupted (a run that hangs, a machine too slow for its runs).
 */
beforeEach(({ task }) => {
  fc.configureGlobal({
    ...fc.readConfigureGlobal(),
    interruptAfterTimeLimit: Math.floor(task.timeout * SHARE),
    markInterruptAsFailure: true,
  });
});
