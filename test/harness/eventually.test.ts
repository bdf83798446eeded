/**
 * The harness's bounded wait: an attempt that never settles fails the wait at its deadline instead of
 * hanging the test (the timers are Vitest's fake ones, moved by hand).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { eventually } from './eventually.ts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

/** The wait's outcome once the fake clock has moved `ms`. */
async function outcomeAfter<T>(wait: Promise<T>, ms: number): Promise<{ value?: T; error?: string }> {
  const outcome = wait.then(
    (value) => ({ value }),
    (error: unknown) => ({ error: (error as Error).message }),
  );
  await vi.advanceTimersByTimeAsync(ms);
  return outcome;
}

describe('eventually', () => {
  it('fails at its deadline when an attempt never settles, and says so', async () => {
    const wait = eventually(() => new Promise<never>(() => undefined), { timeoutMs: 2_000 });
    const { error } = await outcomeAfter(wait, 2_000);
    expect(error).toMatch(
      /^eventually: still failing after 2000 ms: an attempt was still pending after 2000 ms$/,
    );
  });

  it('gives an attempt started late at least a second', async () => {
    let calls = 0;
    const wait = eventually(
      () => {
        calls++;
        if (calls === 1) throw new Error('not yet');
        // Started once the first attempt failed, near the deadline: it settles 900 ms later.
        return new Promise<string>((resolve) => setTimeout(() => resolve('done'), 900));
      },
      { timeoutMs: 100, intervalMs: 90 },
    );
    expect(await outcomeAfter(wait, 1_000)).toEqual({ value: 'done' });
  });

  it('retries what throws until it holds, and rethrows the last failure after the timeout', async () => {
    let calls = 0;
    const holds = eventually(() => {
      if (++calls < 3) throw new Error(`attempt ${calls}`);
      return calls;
    });
    expect(await outcomeAfter(holds, 100)).toEqual({ value: 3 });
    const never = eventually(
      () => {
        throw new Error('never');
      },
      { timeoutMs: 500 },
    );
    expect((await outcomeAfter(never, 600)).error).toMatch(/^eventually: still failing after \d+ ms: never$/);
  });
});
