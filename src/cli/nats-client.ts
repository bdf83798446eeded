import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import type { CommandReply, HistoryView, ModelCommandBody, StatusView, WardenClient } from './client.ts';
import { RequestFailed, type CliErrorCode } from './exit-codes.ts';

export interface NatsClientOptions {
  readonly url: string;
  /** The subject prefix Warden uses (`warden` by default). */
  readonly prefix: string;
  /** A NATS credentials file (WARDEN_NATS_CREDS); user:pass@ or a token in the URL work too. */
  readonly credsFile?: string | undefined;
  readonly timeoutMs?: number;
}

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
    this.connection ??= connect({
      servers: this.options.url,
      timeout: this.options.timeoutMs ?? 5000,
      maxReconnectAttempts: 0,
      ...(this.options.credsFile
        ? { authenticator: credsAuthenticator(readFileSync(this.options.credsFile)) }
        : {}),
    }).catch((error: unknown) => {
      throw new RequestFailed(
        refusal(error) ?? 'unreachable',
        `cannot reach NATS at ${this.options.url}: ${(error as Error).message}`,
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
      throw new RequestFailed(
        refusal(error) ?? 'unreachable',
        `no answer from Warden on ${subject} (is it running in NATS mode?): ${why}`,
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
