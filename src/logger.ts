import pino, { type Logger } from 'pino';
import PinoPretty from 'pino-pretty';
import type { Config } from './config/schema.ts';

/**
 * JSON logs, or pretty ones when writing to a terminal. pino-pretty runs as an in-process stream rather
 * than a transport worker, so nothing outlives shutdown.
 */
export function createLogger(
  options: Config['log'],
  destination: NodeJS.WritableStream = process.stdout,
): Logger {
  goOnWhenOutputFails(destination);
  const pretty = options.pretty ?? Boolean((destination as NodeJS.WriteStream).isTTY);
  if (!pretty) return pino({ level: options.level, base: { service: 'warden' } }, destination);
  return pino(
    { level: options.level },
    PinoPretty({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', destination }),
  );
}

/**
 * The log output failing (its reader gone: `npm start | head`, a log shipper that died) must not take the
 * service down, as an unhandled 'error' event on the stream would: the logs are dropped from then on, and
 * stderr says so once.
 */
function goOnWhenOutputFails(destination: NodeJS.WritableStream): void {
  let told = false;
  destination.on('error', (error: NodeJS.ErrnoException) => {
    if (told) return;
    told = true;
    process.stderr.once('error', () => undefined); // stderr may be gone too: nothing more to say then
    process.stderr.write(
      `warden: the log output failed (${error.code ?? error.message}): logs are dropped from now on; the service goes on\n`,
    );
  });
}

export const silentLogger: Logger = pino({ level: 'silent' });
