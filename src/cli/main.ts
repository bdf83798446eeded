import { Command, CommanderError } from 'commander';
import { registerSprtCommand, UsageError } from './sprt.ts';
import { registerOperatorCommands, CommandFailed } from './commands/index.ts';
import { wardenVersion } from '../version.ts';
import { registerReplayCommand } from './commands/replay.ts';

/** Exit codes: 0 success, 1 failure at run time, 2 bad usage (options or arguments). */
export const EXIT_USAGE = 2;

/**
 * The `warden` program with every command registered. Errors are thrown, never `process.exit`ed, so tests
 * can parse with it; main() maps them to exit codes. Commands are added with program.command(), which
 * inherits that behaviour.
 */
export function buildProgram(): Command {
  const program = new Command('warden')
    .description('Guards continuously trained models: detects regressions and rolls them back')
    .version(wardenVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  registerSprtCommand(program);
  registerOperatorCommands(program);
  registerReplayCommand(program);
  return program;
}

/**
 * For the process that runs the CLI: output piped into a reader that stops early (`warden history | head`)
 * has nowhere to go, so the command ends there, quietly and with its exit code so far, as Unix tools do,
 * instead of dying on an unhandled EPIPE with a stack trace. The service (`warden start`) handles its log
 * output itself, and goes on without it (see createLogger).
 */
export function endQuietlyWhenOutputCloses(): void {
  const onError = (error: NodeJS.ErrnoException): void => {
    if (process.stdout.listeners('error').some((l) => l !== onError)) return; // the service's own
    if (error.code !== 'EPIPE') throw error;
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  };
  process.stdout.on('error', onError);
}

/** Runs the program on `argv` (process.argv: node, script, ...args) and resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv]);
    return 0;
  } catch (error) {
    if (error instanceof CommandFailed) return error.exitCode; // the command has reported it already
    if (error instanceof UsageError) {
      process.stderr.write(`warden: ${error.problems.join('\nwarden: ')}\n`);
      return EXIT_USAGE;
    }
    // Commander has already printed its message (unknown option, missing value, --help).
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE;
    process.stderr.write(`warden: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
