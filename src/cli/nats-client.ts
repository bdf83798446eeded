import { readFileSync } from 'node:fs';
import {
  connect,
  credsAuthenticator,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import type { CommandReply, HistoryView, ModelCommandBody, StatusView, WardenClient } from './client.ts';
import { RequestFailed, type CliErrorCode } from './exit-codes.ts';
import { UsageError } from './sprt.ts';

/** How the CLI proves who it is to NATS: a user and password, a token, a creds file, or nothing. */
export type NatsAuth =
  | { kind: 'user'; user: string; pass: string }
  | { kind: 'token'; token: string }
  | { kind: 'creds'; file: string }
  | { kind: 'none' };

export interface NatsClientOptions {
  /** host:port of each server, credentials taken out (see natsCredentials). */
  readonly servers: readonly string[];
  readonly auth: NatsAuth;
  /** The subject prefix Warden uses (`warden` by default). */
  readonly prefix: string;
  readonly timeoutMs?: number;
}

export interface ExplicitCredentials {
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  readonly token?: string | undefined;
  readonly credsFile?: string | undefined;
}

/**
 * The servers and credentials of a NATS URL list (`nats://user:pass@host:4222,host2:4222`). Credentials
 * given on their own (--user/--password, --nats-token, --nats-creds, or their variables) win over the URL's;
 * giving two kinds of them is a usage error rather than a guess.
 */
export function natsCredentials(
  urls: string,
  explicit: ExplicitCredentials,
): { servers: string[]; auth: NatsAuth } {
  const problems: string[] = [];
  const servers: string[] = [];
  let fromUrl: NatsAuth = { kind: 'none' };
  for (const raw of urls
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)) {
    let url: URL;
    try {
      url = new URL(raw.includes('://') ? raw : `nats://${raw}`);
    } catch {
      // Never echo the value: it may hold a password.
      problems.push(
        '--nats: expected nats://[user:password@]host[:port], received something that is not a URL',
      );
      continue;
    }
    if (url.username && fromUrl.kind === 'none') {
      const user = decodeURIComponent(url.username);
      fromUrl = url.password
        ? { kind: 'user', user, pass: decodeURIComponent(url.password) }
        : { kind: 'token', token: user };
    }
    servers.push(`${url.hostname}:${url.port || '4222'}`);
  }
  if (servers.length === 0 && problems.length === 0) problems.push('--nats: expected at least one server');
  const kinds = [
    explicit.user !== undefined || explicit.password !== undefined ? '--user/--password' : null,
    explicit.token !== undefined ? '--nats-token' : null,
    explicit.credsFile !== undefined ? '--nats-creds' : null,
  ].filter((k): k is string => k !== null);
  if (kinds.length > 1)
    problems.push(`expected one kind of NATS credentials, received ${kinds.join(' and ')}`);
  if ((explicit.user === undefined) !== (explicit.password === undefined)) {
    problems.push('expected --user and --password together (or WARDEN_CLI_NATS_USER and _PASSWORD)');
  }
  if (problems.length > 0) throw new UsageError(problems);
  let auth: NatsAuth = fromUrl;
  if (explicit.user !== undefined) auth = { kind: 'user', user: explicit.user, pass: explicit.password! };
  else if (explicit.token !== undefined) auth = { kind: 'token', token: explicit.token };
  else if (explicit.credsFile !== undefined) auth = { kind: 'creds', file: explicit.credsFile };
  return { servers, auth };
}

/**
 * Replies come back on `_INBOX_<user>.>`: nats.conf lets each user subscribe to its own inboxes only, so
 * that nobody reads the replies meant for an operator.
 */
export function inboxPrefixFor(auth: NatsAuth): string {
  return auth.kind === 'user' && /^[A-Za-z0-9_-]+$/.test(auth.user) ? `_INBOX_${auth.user}` : '_INBOX';
}

function connectOptions(options: NatsClientOptions): ConnectionOptions {
  const base: ConnectionOptions = {
    servers: [...options.servers],
    timeout: options.timeoutMs ?? 5000,
    maxReconnectAttempts: 0,
    inboxPrefix: inboxPrefixFor(options.auth),
  };
  const auth = options.auth;
  switch (auth.kind) {
    case 'user':
      return { ...base, user: auth.user, pass: auth.pass };
    case 'token':
      return { ...base, token: auth.token };
    case 'creds': {
      let creds: Uint8Array;
      try {
        creds = new Uint8Array(readFileSync(auth.file));
      } catch (error) {
        throw new UsageError([`--nats-creds: cannot read ${auth.file}: ${(error as Error).message}`]);
      }
      return { ...base, authenticator: credsAuthenticator(creds) };
    }
    case 'none':
      return base;
  }
}

/** For messages: where the CLI connects, never with credentials. */
const where = (options: NatsClientOptions) => options.servers.join(',');

type Reply =
  | { ok: true; [key: string]: unknown }
  | { ok: false; error: { code: string; message: string; issues?: string[] } };

/**
 * Talks to Warden over NATS request/reply on `<prefix>.cmd.*` (issue 3's contract): each command's
 * payload is the HTTP body, with `by` always given; replies are `{ok: true, ...}` or `{ok: false, error}`.
 */
export class NatsClient implements WardenClient {
  private connection: Promise<NatsConnection> | null = null;

  constructor(private readonly options: NatsClientOptions) {}

  status(modelId?: string): Promise<StatusView> {
    return this.request('status', modelId === undefined ? {} : { model_id: modelId });
  }

  history(query: { model_id?: string | undefined; limit?: number | undefined }): Promise<HistoryView> {
    const payload: Record<string, unknown> = {};
    if (query.model_id !== undefined) payload.model_id = query.model_id;
    if (query.limit !== undefined) payload.limit = query.limit;
    return this.request('history', payload);
  }

  modelCommand(
    command: 'approve' | 'reject' | 'rollback',
    modelId: string,
    body: ModelCommandBody,
  ): Promise<CommandReply> {
    return this.request(`${command}.${modelId}`, body);
  }

  trainingCommand(
    command: 'pause' | 'resume',
    configKey: string,
    body: { by: string; reason?: string | undefined; note?: string | undefined },
  ): Promise<CommandReply> {
    return this.request(`${command}.${configKey}`, body);
  }

  async close(): Promise<void> {
    const pending = this.connection;
    this.connection = null;
    if (pending) await pending.then((nc) => nc.close()).catch(() => undefined);
  }

  private connect(): Promise<NatsConnection> {
    if (this.connection) return this.connection;
    const options = connectOptions(this.options);
    this.connection = connect(options).catch((error: unknown) => {
      throw new RequestFailed(
        refusal(error) ?? 'unreachable',
        `cannot reach NATS at ${where(this.options)}: ${(error as Error).message}`,
      );
    });
    return this.connection;
  }

  private async request<T>(command: string, payload: object): Promise<T> {
    const nc = await this.connect();
    const subject = `${this.options.prefix}.cmd.${command}`;
    let reply: Reply;
    try {
      const message = await nc.request(subject, JSON.stringify(payload), {
        timeout: this.options.timeoutMs ?? 10_000,
      });
      reply = message.json<Reply>();
    } catch (error) {
      const why = error instanceof SyntaxError ? 'the reply is not JSON' : (error as Error).message;
      const refused = refusal(error);
      throw new RequestFailed(
        refused ?? 'unreachable',
        refused
          ? `NATS refused ${subject} for this user (see nats.conf's permissions): ${why}`
          : `no answer from Warden on ${subject} (is it running in NATS mode?): ${why}`,
      );
    }
    if (reply.ok === true) {
      const { ok: _ok, ...rest } = reply;
      return rest as T;
    }
    if (reply.ok === false && reply.error) {
      throw new RequestFailed(reply.error.code as CliErrorCode, reply.error.message, reply.error.issues);
    }
    throw new RequestFailed(
      'bad_response',
      `${subject} answered something that is not {ok, ...}: ${JSON.stringify(reply).slice(0, 120)}`,
    );
  }
}

/** Permission and authentication errors are refusals (exit 6), not an unreachable server. */
function refusal(error: unknown): CliErrorCode | null {
  const name = (error as Error)?.name ?? '';
  const cause = ((error as { cause?: Error })?.cause?.name ?? '') as string;
  return /Authorization|Permission|Authentication/.test(`${name} ${cause}`) ? 'forbidden' : null;
}
