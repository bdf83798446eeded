import type { ModelStatus, TrainingStatus } from '../warden.ts';
import { RequestFailed, type CliErrorCode } from './exit-codes.ts';

export interface StatusView {
  models: ModelStatus[];
  training: TrainingStatus[];
}

export interface HistoryView {
  rollbacks: Array<Record<string, unknown>>;
}

/** A command's reply: what happened and the state it left the actor in (plus the recorded `by`). */
export interface CommandReply {
  outcome: { kind: string; [key: string]: unknown };
  state: string;
  by?: string;
  [key: string]: unknown;
}

export interface ModelCommandBody {
  by: string;
  note?: string | undefined;
  reason?: string | undefined;
  to_version?: string | undefined;
}

/** The operations the CLI needs, over HTTP or NATS; errors are RequestFailed. */
export interface WardenClient {
  status(modelId?: string): Promise<StatusView>;
  history(query: { model_id?: string | undefined; limit?: number | undefined }): Promise<HistoryView>;
  modelCommand(
    command: 'approve' | 'reject' | 'rollback',
    modelId: string,
    body: ModelCommandBody,
  ): Promise<CommandReply>;
  trainingCommand(
    command: 'pause' | 'resume',
    configKey: string,
    body: { by: string; reason?: string | undefined; note?: string | undefined },
  ): Promise<CommandReply>;
  close(): Promise<void>;
}

export interface HttpClientOptions {
  readonly url: string;
  readonly token?: string | undefined;
  readonly timeoutMs?: number;
}

const KNOWN_CODES = new Set<CliErrorCode>([
  'invalid_input',
  'invalid_config',
  'unknown_model',
  'unknown_version',
  'no_pending_approval',
  'conflict',
  'unauthorized',
  'forbidden',
  'unavailable',
  'internal',
  'not_found',
]);

/** Talks to a running Warden's HTTP API. */
export class HttpClient implements WardenClient {
  private readonly base: string;

  constructor(private readonly options: HttpClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
  }

  async status(modelId?: string): Promise<StatusView> {
    if (modelId !== undefined) {
      const reply = await this.request<{ model: ModelStatus; training: TrainingStatus }>(
        'GET',
        `/v1/models/${encodeURIComponent(modelId)}`,
      );
      return { models: [reply.model], training: [reply.training] };
    }
    const [models, training] = await Promise.all([
      this.request<{ models: ModelStatus[] }>('GET', '/v1/models'),
      this.request<{ training: TrainingStatus[] }>('GET', '/v1/training'),
    ]);
    return { models: models.models, training: training.training };
  }

  history(query: { model_id?: string | undefined; limit?: number | undefined }): Promise<HistoryView> {
    const params = new URLSearchParams();
    if (query.model_id !== undefined) params.set('model_id', query.model_id);
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    const search = params.toString() === '' ? '' : `?${params}`;
    return this.request('GET', `/v1/rollbacks${search}`);
  }

  modelCommand(
    command: 'approve' | 'reject' | 'rollback',
    modelId: string,
    body: ModelCommandBody,
  ): Promise<CommandReply> {
    return this.request('POST', `/v1/models/${encodeURIComponent(modelId)}/${command}`, body);
  }

  trainingCommand(
    command: 'pause' | 'resume',
    configKey: string,
    body: { by: string; reason?: string | undefined; note?: string | undefined },
  ): Promise<CommandReply> {
    return this.request('POST', `/v1/training/${encodeURIComponent(configKey)}/${command}`, body);
  }

  async close(): Promise<void> {}

  private async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new RequestFailed('unreachable', `cannot reach Warden at ${this.base}: ${why}`);
    }
    const text = await response.text();
    let reply: unknown;
    try {
      reply = JSON.parse(text);
    } catch {
      throw new RequestFailed(
        'bad_response',
        `${this.base}${path} answered ${response.status} with something that is not JSON: ${text.slice(0, 120)}`,
      );
    }
    if (response.ok) return reply as T;
    const error = (reply as { error?: { code?: string; message?: string; issues?: string[] } }).error;
    const code = KNOWN_CODES.has(error?.code as CliErrorCode) ? (error!.code as CliErrorCode) : 'internal';
    if (code === 'unauthorized') throw new RequestFailed(code, this.tokenAdvice(method), error?.issues);
    throw new RequestFailed(code, error?.message ?? `HTTP ${response.status}`, error?.issues);
  }

  /** A person at a terminal needs to know where the token goes, not which header the server wanted. */
  private tokenAdvice(method: 'GET' | 'POST'): string {
    // Reads need a token only once viewer tokens are configured; then any configured token does.
    const kind = method === 'GET' ? 'a token (viewer, operator or producer)' : 'an operator token';
    const lists =
      method === 'GET'
        ? 'WARDEN_VIEWER_TOKENS, WARDEN_OPERATOR_TOKENS or WARDEN_PRODUCER_TOKENS'
        : 'WARDEN_OPERATOR_TOKENS';
    return this.options.token
      ? `Warden at ${this.base} does not know the token given (--token or WARDEN_TOKEN): expected ${kind} (${lists})`
      : `this command needs ${kind}: set WARDEN_TOKEN or pass --token (Warden at ${this.base} has tokens configured)`;
  }
}
