/**
 * The long-lived service: `node dist/main.js` in production (after `npm run build`), `npm start` from the
 * sources. Configuration comes from WARDEN_CONFIG (a YAML or JSON file) and WARDEN_* environment
 * variables; see the README. Runs until SIGINT or SIGTERM, then shuts down in order within
 * shutdownTimeoutSeconds; a second signal ends it at once.
 */
import { loadConfig } from './config/load.ts';
import { createLogger } from './logger.ts';
import { buildService } from './service.ts';
import { WardenError } from './domain/errors.ts';
import { shutdownOnSignals, startedByNpm } from './shutdown.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.log);
  // Start-up can wait (NATS not reachable yet): say so, rather than nothing until it is up.
  logger.info(
    { pid: process.pid, mode: config.nats.url ? 'nats' : 'embedded' },
    config.nats.url
      ? 'starting Warden in NATS mode: connecting (it waits until NATS answers; Ctrl-C ends it)'
      : `starting Warden in embedded mode (state in ${config.dataDir})`,
  );
  const service = await buildService(config, { logger });
  const stopped = shutdownOnSignals({
    logger,
    deadlineSeconds: config.shutdownTimeoutSeconds,
    stop: () => service.stop(),
    exit: (code) => process.exit(code),
    underNpm: startedByNpm(),
    // Under npm a shell may sit in between: if Warden is left behind, it stops as if sent SIGTERM.
    parentPid: startedByNpm() ? () => process.ppid : undefined,
  });
  // Announced once the signal handlers are in place: from here on a signal stops it in order.
  logger.info(
    { endpoints: service.endpoints, pid: process.pid },
    `Warden is running (${service.endpoints.join('; ')}). Ctrl-C stops it.`,
  );
  await stopped;
  process.exit(0);
}

/** Errors that say what is wrong by themselves: ours, and the system's (a port in use, a data dir that is a file). */
function plainly(error: unknown): string | null {
  if (error instanceof WardenError) return error.message;
  const system = error as { code?: unknown; syscall?: unknown; message?: unknown };
  if (typeof system?.code === 'string' && typeof system.syscall === 'string') return String(system.message);
  return null;
}

main().catch((error: unknown) => {
  // Print what is wrong without a stack; anything else is a bug and keeps its stack.
  const message = plainly(error);
  if (message !== null) console.error(`warden: cannot start: ${message}`);
  else console.error(error);
  process.exit(1);
});
