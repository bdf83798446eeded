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
  const pretty = options.pretty ?? Boolean((destination as NodeJS.WriteStream).isTTY);
  if (!pretty) return pino({ level: options.level, base: { service: 'warden' } }, destination);
  return pino(
    { level: options.level },
    PinoPretty({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', destination }),
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
