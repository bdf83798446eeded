import { Option, type Command } from 'commander';
import { WardenError } from '../../domain/errors.ts';
import { CommandFailed, EXIT } from '../exit-codes.ts';

interface StartOptions {
  config?: string;
  port?: string;
  host?: string;
  dataDir?: string;
  inspect?: boolean;
  inspectPort?: string;
  inspectUrl?: string;
}

/** How long shutdown may take before the process is ended anyway (something kept it open: a bug). */
const EXIT_GRACE_MS = 10_000;

/** Command-line flags become the environment variables loadConfig already maps, so one loader decides. */
function environmentFor(options: StartOptions): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (options.port !== undefined) env.WARDEN_HTTP_PORT = options.port;
  if (options.host !== undefined) env.WARDEN_HTTP_HOST = options.host;
  if (options.dataDir !== undefined) env.WARDEN_DATA_DIR = options.dataDir;
  if (options.inspect || options.inspectPort !== undefined || options.inspectUrl !== undefined)
    env.WARDEN_INSPECT = 'true';
  if (options.inspectPort !== undefined) env.WARDEN_INSPECT_PORT = options.inspectPort;
  if (options.inspectUrl !== undefined) env.WARDEN_INSPECT_URL = options.inspectUrl;
  return env;
}

/**
 * `warden start`: the service in the foreground, as `npm start` runs it. It returns after an orderly
 * shutdown, and the process then ends by itself: nothing Warden opened (HTTP server, inspector, alert
 * retries) may hold it.
 */
export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description(
      'Run Warden in the foreground until SIGINT or SIGTERM (configuration: WARDEN_CONFIG and WARDEN_* variables)',
    )
    .option('--config <file>', 'YAML or JSON configuration file (default: WARDEN_CONFIG)')
    .option('--port <port>', 'HTTP port (WARDEN_HTTP_PORT, default 8080)')
    .option('--host <host>', 'HTTP host (WARDEN_HTTP_HOST, default 127.0.0.1)')
    .option('--data-dir <dir>', 'where the embedded mode keeps its state (WARDEN_DATA_DIR)')
    .option('--inspect', 'attach the Stately inspector and serve its page (WARDEN_INSPECT)')
    .addOption(
      new Option('--inspect-port <port>', 'port of the inspector page (WARDEN_INSPECT_PORT, default 8090)'),
    )
    .addOption(
      new Option('--inspect-url <url>', 'send inspection events to this relay instead (WARDEN_INSPECT_URL)'),
    )
    .action(async (options: StartOptions) => {
      // Loaded here, not at the top: the other commands start faster without the whole service.
      const [
        { loadConfig },
        { createLogger },
        { buildService },
        { inspectionTargetFromEnv },
        { shutdownOnSignals, startedByNpm },
      ] = await Promise.all([
        import('../../config/load.ts'),
        import('../../logger.ts'),
        import('../../service.ts'),
        import('../../inspect/inspector.ts'),
        import('../../shutdown.ts'),
      ]);
      const env = environmentFor(options);
      let config;
      try {
        config = loadConfig(env, options.config ?? env.WARDEN_CONFIG);
      } catch (error) {
        if (!(error instanceof WardenError)) throw error;
        process.stderr.write(`warden: ${error.message}\n`);
        throw new CommandFailed(EXIT.usage, error.message);
      }
      const logger = createLogger(config.log);
      const service = await buildService(config, { logger, inspection: inspectionTargetFromEnv(env) });
      const stopped = shutdownOnSignals({
        logger,
        deadlineSeconds: config.shutdownTimeoutSeconds,
        stop: () => service.stop(),
        exit: (code) => process.exit(code),
        underNpm: startedByNpm(env),
        // `npx warden start` has a shell between npm and Warden: if Warden is left behind, it stops.
        parentPid: startedByNpm(env) ? () => process.ppid : undefined,
      });
      logger.info(
        { endpoints: service.endpoints, pid: process.pid },
        `Warden is running (${service.endpoints.join('; ')}). Ctrl-C stops it.`,
      );
      await stopped;
      setTimeout(() => {
        logger.error(
          `still running ${EXIT_GRACE_MS} ms after shutdown: something holds the process open; exiting`,
        );
        process.exit(1);
      }, EXIT_GRACE_MS).unref();
    });
}
