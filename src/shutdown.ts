import type { Logger } from 'pino';

/** Exit codes of a shutdown that did not finish in order: 128 + the signal's number, or 1. */
export const EXIT_ON_SIGNAL: Readonly<Record<ShutdownSignal, number>> = { SIGINT: 130, SIGTERM: 143 };
export const EXIT_DEADLINE = 1;

export type ShutdownSignal = 'SIGINT' | 'SIGTERM';
const SIGNALS: readonly ShutdownSignal[] = ['SIGINT', 'SIGTERM'];

/**
 * npm (npm start, npx) forwards SIGINT and SIGTERM to its child, while a terminal's Ctrl-C also reaches
 * the child directly: one Ctrl-C arrives twice. A repeat of SIGINT this soon after the first counts as the
 * same Ctrl-C when npm started the process; anywhere else every repeat counts.
 */
export const NPM_DUPLICATE_WINDOW_MS = 1000;

export interface ShutdownOptions {
  readonly logger: Logger;
  /** The configured deadline (shutdownTimeoutSeconds): after it the process exits non-zero. */
  readonly deadlineSeconds: number;
  /** The orderly shutdown (service.stop()). */
  readonly stop: () => Promise<void>;
  /** Ends the process (process.exit in production). */
  readonly exit: (code: number) => void;
  /** Where signals come from (process in production). */
  readonly signals?: Pick<NodeJS.Process, 'on' | 'off'>;
  /** Whether npm started this process (it forwards the terminal's Ctrl-C a second time). */
  readonly underNpm?: boolean;
  readonly now?: () => number;
  /**
   * Under npm, a shell may sit between npm and Warden (`npx warden start`): SIGTERM to npm ends the shell
   * and Warden is left running, re-parented. Given the parent pid as read now, a change of parent
   * starts the same orderly shutdown as a signal. Checked every `parentCheckMs` (default 500 ms).
   */
  readonly parentPid?: () => number;
  readonly parentCheckMs?: number;
}

/**
 * Waits for SIGINT or SIGTERM, then shuts down in order, bounded: the first signal starts `stop()`; a
 * second one ends the process at once; if `stop()` has not finished by the deadline, the process exits
 * with code 1 and says so. Resolves once `stop()` has finished in time.
 */
export function shutdownOnSignals(options: ShutdownOptions): Promise<void> {
  const signals = options.signals ?? process;
  const now = options.now ?? (() => performance.now());
  const { logger, deadlineSeconds } = options;
  return new Promise<void>((resolve) => {
    let first: { signal: ShutdownSignal; at: number } | null = null;
    let deadline: NodeJS.Timeout | undefined;
    let parentWatch: NodeJS.Timeout | undefined;
    const detach = () => {
      for (const signal of SIGNALS) signals.off(signal, handlers[signal]);
      clearTimeout(deadline);
      clearInterval(parentWatch);
    };
    const onSignal = (signal: ShutdownSignal, why?: string) => {
      if (first === null) {
        first = { signal, at: now() };
        clearInterval(parentWatch);
        logger.info(
          { signal, deadline_seconds: deadlineSeconds },
          `shutting down on ${why ?? signal}: stopping intake, finishing in-flight work (at most ${deadlineSeconds} s; a second SIGINT or SIGTERM ends Warden at once)`,
        );
        deadline = setTimeout(() => {
          detach();
          logger.error(
            { signal, deadline_seconds: deadlineSeconds, exit_code: EXIT_DEADLINE },
            `shutdown did not finish within ${deadlineSeconds} s (shutdownTimeoutSeconds): exiting with code ${EXIT_DEADLINE}`,
          );
          options.exit(EXIT_DEADLINE);
        }, deadlineSeconds * 1000);
        options.stop().then(
          () => {
            detach();
            resolve();
          },
          (error: unknown) => {
            detach();
            logger.error({ err: error, exit_code: EXIT_DEADLINE }, 'shutdown failed');
            options.exit(EXIT_DEADLINE);
          },
        );
        return;
      }
      const echo =
        options.underNpm === true &&
        signal === 'SIGINT' &&
        first.signal === 'SIGINT' &&
        now() - first.at < NPM_DUPLICATE_WINDOW_MS;
      if (echo) return; // the same Ctrl-C, forwarded by npm
      detach();
      logger.warn(
        { signal, exit_code: EXIT_ON_SIGNAL[signal] },
        `second signal (${signal}) during shutdown: ending at once with code ${EXIT_ON_SIGNAL[signal]}, without waiting for in-flight work`,
      );
      options.exit(EXIT_ON_SIGNAL[signal]);
    };
    const handlers = { SIGINT: () => onSignal('SIGINT'), SIGTERM: () => onSignal('SIGTERM') };
    for (const signal of SIGNALS) signals.on(signal, handlers[signal]);
    const { parentPid } = options;
    if (parentPid) {
      const parent = parentPid();
      parentWatch = setInterval(() => {
        if (parentPid() !== parent) onSignal('SIGTERM', `SIGTERM (the parent process ${parent} has gone)`);
      }, options.parentCheckMs ?? 500);
      parentWatch.unref();
    }
  });
}

/** npm sets npm_command for the scripts and the `npx` it runs. */
export const startedByNpm = (env: NodeJS.ProcessEnv = process.env): boolean => env.npm_command !== undefined;
