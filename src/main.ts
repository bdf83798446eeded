/**
 * `npm start`: the long-lived service. Configuration comes from WARDEN_CONFIG (a YAML or JSON file) and
 * WARDEN_* environment variables; see the README. Runs until SIGINT or SIGTERM, then shuts down in order.
 */
import { loadConfig } from './config/load.ts';
import { createLogger } from './logger.ts';
import { buildService } from './service.ts';
import { WardenError } from './domain/errors.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.log);
  const service = await buildService(config, { logger });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: stopping intake, finishing in-flight work');
    service.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // Announced once the signal handlers are in place: from here on a signal stops it in order.
  logger.info(
    { endpoints: service.endpoints },
    `Warden is running (${service.endpoints.join('; ')}). Ctrl-C stops it.`,
  );
}

main().catch((error: unknown) => {
  // Configuration errors list every problem; print them plainly, without a stack.
  if (error instanceof WardenError && error.code === 'invalid_config') console.error(error.message);
  else console.error(error);
  process.exit(1);
});
