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
  const service = await buildService(config, { logger });
  const stopped = shutdownOnSignals({
    logger,
    deadlineSeconds: config.shutdownTimeoutSeconds,
    stop: () => service.stop(),
    exit: (code) => process.exit(code),
    underNpm: startedByNpm(),
  });
  // Announced once the signal handlers are in place: from here on a signal stops it in order.
  logger.info(
    { endpoints: service.endpoints, pid: process.pid },
    `Warden is running (${service.endpoints.join('; ')}). Ctrl-C stops it.`,
  );
  await stopped;
  process.exit(0);
}

main().catch((error: unknown) => {
  // Our own errors (configuration, a port in use, a store that cannot open) say what is wrong: print the
  // message plainly, without a stack; anything else is a bug and keeps its stack.
  if (error instanceof WardenError) console.error(`warden: cannot start: ${error.message}`);
  else console.error(error);
  process.exit(1);
});
