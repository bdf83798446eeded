import { userInfo } from 'node:os';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { TOKEN_PATTERN } from '../../domain/model-ref.ts';
import { HttpClient, type WardenClient } from '../client.ts';
import { CommandFailed, EXIT, RequestFailed, exitCodeFor, type CliErrorCode } from '../exit-codes.ts';
import { UsageError } from '../sprt.ts';

/** The options every command that talks to a running Warden takes. */
export interface ConnectionOptions {
  url: string;
  token?: string;
  nats?: string;
  natsPrefix: string;
  natsCreds?: string;
  user?: string;
  password?: string;
  natsToken?: string;
  json?: boolean;
}

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export const EXIT_CODES_HELP = `
Where the CLI connects (the service's own WARDEN_NATS_URL is never read here):
  --nats, then --url, then WARDEN_CLI_NATS_URL, then WARDEN_URL, then ${DEFAULT_URL}
  NATS credentials: --user/--password, --nats-token or --nats-creds (or their WARDEN_CLI_NATS_* variables),
  else the user:password@ or token@ part of the NATS URL

Exit codes:
  0  done
  1  the request failed in Warden (internal error) or the reply made no sense
  2  bad usage, or input Warden refused as invalid
  3  unknown model or version
  4  not possible now: no pending approval, not paused, already rolling back
  5  cannot reach Warden (or it is not ready)
  6  refused: missing or wrong token, or a token not allowed to do this
`;

/** `--url` / WARDEN_URL: refused as bad usage (exit 2) unless it is an http(s) URL. */
export function parseHttpUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidArgumentError(`expected an http:// or https:// URL such as ${DEFAULT_URL}.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(
      `expected an http:// or https:// URL, received the scheme "${url.protocol}".`,
    );
  }
  return raw;
}

export function withConnectionOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--url <url>', 'Warden HTTP API')
        .env('WARDEN_URL')
        .default(DEFAULT_URL)
        .argParser(parseHttpUrl),
    )
    .addOption(
      new Option('--token <token>', 'bearer token for commands (an operator token)').env('WARDEN_TOKEN'),
    )
    .addOption(
      new Option('--nats <url>', 'talk to Warden over NATS instead of HTTP').env('WARDEN_CLI_NATS_URL'),
    )
    .addOption(
      new Option('--nats-prefix <prefix>', 'Warden subject prefix on NATS')
        .env('WARDEN_NATS_PREFIX')
        .default('warden'),
    )
    .addOption(new Option('--user <name>', 'NATS user').env('WARDEN_CLI_NATS_USER'))
    .addOption(new Option('--password <password>', 'NATS password').env('WARDEN_CLI_NATS_PASSWORD'))
    .addOption(new Option('--nats-token <token>', 'NATS token').env('WARDEN_CLI_NATS_TOKEN'))
    .addOption(new Option('--nats-creds <file>', 'NATS credentials file').env('WARDEN_CLI_NATS_CREDS'))
    .option('--json', 'print JSON for scripts instead of tables')
    .addHelpText('after', EXIT_CODES_HELP);
}

/** Where the command line says to connect; a flag beats an environment variable, NATS beats HTTP. */
export function transportFor(
  command: Command,
  options: ConnectionOptions,
): { kind: 'nats'; url: string } | { kind: 'http'; url: string } {
  const source = (name: string) => command.getOptionValueSource(name);
  if (source('nats') === 'cli' && source('url') === 'cli') {
    throw new UsageError(['expected --url or --nats, received both']);
  }
  if (source('nats') === 'cli') return { kind: 'nats', url: options.nats! };
  if (source('url') === 'cli') return { kind: 'http', url: options.url };
  if (options.nats && source('url') === 'env') {
    throw new UsageError([
      'expected WARDEN_URL or WARDEN_CLI_NATS_URL, received both: pass --url or --nats to choose',
    ]);
  }
  if (options.nats) return { kind: 'nats', url: options.nats };
  return { kind: 'http', url: options.url };
}

export async function clientFor(command: Command, options: ConnectionOptions): Promise<WardenClient> {
  const transport = transportFor(command, options);
  if (transport.kind === 'nats') {
    // The NATS client library loads only when it is used.
    const { NatsClient, natsCredentials } = await import('../nats-client.ts');
    const { servers, auth } = natsCredentials(transport.url, {
      user: options.user,
      password: options.password,
      token: options.natsToken,
      credsFile: options.natsCreds,
    });
    return new NatsClient({ servers, auth, prefix: options.natsPrefix });
  }
  return new HttpClient({ url: transport.url, token: options.token });
}

/** Who the audit log records as asking, unless --by or WARDEN_BY says otherwise: the user name. */
export function defaultOperator(): string {
  try {
    return userInfo().username || 'cli';
  } catch {
    return 'cli';
  }
}

function fail(
  options: { json?: boolean | undefined },
  code: CliErrorCode,
  message: string,
  issues?: string[],
): never {
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ error: issues ? { code, message, issues } : { code, message } }, null, 2)}\n`,
    );
  } else {
    process.stderr.write(`warden: ${message}\n`);
  }
  throw new CommandFailed(exitCodeFor(code), message);
}

/** Model ids and config keys become path segments and NATS subject tokens: refuse anything else early. */
export function requireKey(options: { json?: boolean | undefined }, what: string, value: string): void {
  if (!TOKEN_PATTERN.test(value)) {
    fail(
      options,
      'invalid_input',
      `${what}: expected a single token of letters, digits, "_" or "-" (1 to 128), received "${value.slice(0, 140)}"`,
    );
  }
}

/**
 * Runs one request and prints its result (a table, or JSON with --json). A failed request is reported
 * once, on stderr (or as `{error}` JSON on stdout), and becomes the exit code.
 */
export async function runRequest<T>(
  command: Command,
  options: ConnectionOptions,
  work: (client: WardenClient) => Promise<T>,
  render: (result: T) => string,
): Promise<void> {
  const client = await clientFor(command, options);
  try {
    const result = await work(client);
    process.stdout.write(`${options.json ? JSON.stringify(result, null, 2) : render(result)}\n`);
  } catch (error) {
    if (error instanceof RequestFailed) fail(options, error.code, error.message, error.issues);
    throw error;
  } finally {
    await client.close();
  }
}

export { EXIT };
