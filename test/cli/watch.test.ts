import { describe, expect, it } from 'vitest';
import { RequestFailed } from '../../src/cli/exit-codes.ts';
import { watch } from '../../src/cli/watch.ts';

/** A watch driven by a scripted feed of looks; its sleep counts instead of waiting. */
function scripted(
  looks: Array<string | Error>,
  options: { maxRenders?: number; abortAfterSleeps?: number } = {},
) {
  const written: string[] = [];
  const stop = new AbortController();
  let sleeps = 0;
  let look = 0;
  const run = watch<string>({
    fetch: async () => {
      const next = looks[Math.min(look++, looks.length - 1)]!;
      if (next instanceof Error) throw next;
      return next;
    },
    render: (view) => `view ${view}`,
    write: (text) => written.push(text),
    sleep: async () => {
      sleeps++;
      if (options.abortAfterSleeps !== undefined && sleeps >= options.abortAfterSleeps) stop.abort();
    },
    intervalMs: 2000,
    maxRenders: options.maxRenders,
    signal: stop.signal,
    clear: false,
    now: () => new Date('2026-01-01T00:00:00Z'),
  });
  return { run, written, sleeps: () => sleeps };
}

describe('status --watch', () => {
  it('renders only when the view changes, and stops when aborted', async () => {
    const w = scripted(['a', 'a', 'b', 'b', 'b', 'a'], { abortAfterSleeps: 6 });
    expect(await w.run).toBe(3);
    expect(w.written).toEqual([
      '2026-01-01T00:00:00Z (every 2 s, Ctrl-C stops)\nview a\n',
      '\n2026-01-01T00:00:00Z (every 2 s, Ctrl-C stops)\nview b\n',
      '\n2026-01-01T00:00:00Z (every 2 s, Ctrl-C stops)\nview a\n',
    ]);
    expect(w.sleeps()).toBe(6);
  });

  it('is bounded by --count, and shows a failed look instead of ending', async () => {
    const w = scripted(['a', new RequestFailed('unreachable', 'cannot reach Warden at x'), 'a'], {
      maxRenders: 3,
    });
    expect(await w.run).toBe(3);
    expect(w.written.map((t) => t.split('\n').at(-2))).toEqual([
      'view a',
      'warden: cannot reach Warden at x',
      'view a',
    ]);
  });

  it('lets an unexpected error through (a bug is not a view)', async () => {
    const w = scripted([new TypeError('boom')], { maxRenders: 1 });
    await expect(w.run).rejects.toThrow('boom');
  });
});
