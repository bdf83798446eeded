/**
 * The shutdown rules on injected signals, time and exit (issue 8, finding 9): the first SIGINT/SIGTERM
 * stops in order, a second ends the process at once, the deadline bounds it, and under npm the terminal's
 * Ctrl-C that npm forwards a second time counts once.
 */
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NPM_DUPLICATE_WINDOW_MS, shutdownOnSignals } from '../../src/shutdown.ts';
import { captureLogger } from '../http/support.ts';

afterEach(() => {
  vi.useRealTimers();
});

function setUp(options: { underNpm?: boolean; stop?: () => Promise<void>; parentPid?: () => number } = {}) {
  vi.useFakeTimers();
  const signals = new EventEmitter();
  const exits: number[] = [];
  const log = captureLogger();
  let time = 0;
  let finishStop: () => void = () => undefined;
  const done = shutdownOnSignals({
    logger: log.logger,
    deadlineSeconds: 5,
    stop: options.stop ?? (() => new Promise<void>((resolve) => (finishStop = resolve))),
    exit: (code) => exits.push(code),
    signals: signals as unknown as Pick<NodeJS.Process, 'on' | 'off'>,
    underNpm: options.underNpm ?? false,
    now: () => time,
    ...(options.parentPid ? { parentPid: options.parentPid, parentCheckMs: 500 } : {}),
  });
  return {
    signals,
    exits,
    log,
    done,
    advance: (ms: number) => {
      time += ms;
      vi.advanceTimersByTime(ms);
    },
    finishStop: () => finishStop(),
  };
}

describe('shutdown on signals', () => {
  it('the first signal stops in order and resolves; nothing exits early', async () => {
    const s = setUp();
    s.signals.emit('SIGTERM');
    s.advance(4_999);
    s.finishStop();
    await s.done;
    expect(s.exits).toEqual([]);
    expect(s.log.text()).toContain('shutting down on SIGTERM');
    // Detached: later signals are no longer ours.
    expect(s.signals.listenerCount('SIGTERM') + s.signals.listenerCount('SIGINT')).toBe(0);
  });

  it.each([
    ['SIGTERM', 'SIGTERM', 143],
    ['SIGTERM', 'SIGINT', 130],
    ['SIGINT', 'SIGINT', 130],
    ['SIGINT', 'SIGTERM', 143],
  ])('%s then %s ends at once with %i', (first, second, code) => {
    const s = setUp();
    s.signals.emit(first);
    s.advance(1);
    s.signals.emit(second);
    expect(s.exits).toEqual([code]);
    expect(s.log.text()).toContain(`second signal (${second}) during shutdown`);
  });

  it('past the deadline the process exits 1 and says so, once', () => {
    const s = setUp();
    s.signals.emit('SIGINT');
    s.advance(4_999);
    expect(s.exits).toEqual([]);
    s.advance(1);
    expect(s.exits).toEqual([1]);
    expect(s.log.text()).toContain('shutdown did not finish within 5 s (shutdownTimeoutSeconds)');
    s.advance(60_000);
    expect(s.exits).toEqual([1]);
  });

  it('a failed stop exits 1 with the error logged', async () => {
    const s = setUp({ stop: () => Promise.reject(new Error('store would not close')) });
    s.signals.emit('SIGTERM');
    await vi.waitFor(() => expect(s.exits).toEqual([1]));
    expect(s.log.text()).toContain('store would not close');
  });

  it("under npm, the terminal's Ctrl-C forwarded by npm counts once; a later one ends at once", () => {
    const s = setUp({ underNpm: true });
    s.signals.emit('SIGINT');
    s.advance(5);
    s.signals.emit('SIGINT'); // the same Ctrl-C, from npm
    expect(s.exits).toEqual([]);
    s.advance(NPM_DUPLICATE_WINDOW_MS);
    s.signals.emit('SIGINT');
    expect(s.exits).toEqual([130]);
  });

  it('under npm, a second SIGTERM is never an echo: it ends at once', () => {
    const s = setUp({ underNpm: true });
    s.signals.emit('SIGTERM');
    s.signals.emit('SIGTERM');
    expect(s.exits).toEqual([143]);
  });

  it('under npm, a parent that has gone (npx: the shell between npm and Warden ended) starts the shutdown', async () => {
    let parent = 4242;
    let stops = 0;
    const s = setUp({
      parentPid: () => parent,
      stop: async () => {
        stops += 1;
      },
    });
    s.advance(2_000);
    expect(stops).toBe(0);
    parent = 1; // re-parented to init
    s.advance(500);
    await s.done;
    expect(stops).toBe(1);
    expect(s.log.text()).toContain('shutting down on SIGTERM (the parent process 4242 has gone)');
    expect(s.exits).toEqual([]);
  });
});
