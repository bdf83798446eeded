import type { Logger } from 'pino';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { z } from 'zod';
import type { Warden } from '../warden.ts';
import { ValidationError, WardenError, toWardenError } from '../domain/errors.ts';
import { parseInput } from '../domain/validation.ts';
import { encodeJson } from './codec.ts';

const StatusQuery = z.object({ model_id: z.string().optional() }).strict();
const HistoryQuery = z.object({ model_id: z.string().optional(), limit: z.number().optional() }).strict();

/** The commands on `<prefix>.cmd.<verb>[.<key>]`, each a Warden method; `key` is the subject's last token. */
const COMMANDS: Record<
  string,
  {
    key: 'model_id' | 'config_key' | null;
    run(warden: Warden, key: string, body: unknown): Promise<object> | object;
  }
> = {
  approve: { key: 'model_id', run: (w, key, body) => w.approve(key, body) },
  reject: { key: 'model_id', run: (w, key, body) => w.reject(key, body) },
  rollback: { key: 'model_id', run: (w, key, body) => w.rollback(key, body) },
  pause: { key: 'config_key', run: (w, key, body) => w.pause(key, body) },
  resume: { key: 'config_key', run: (w, key, body) => w.resume(key, body) },
  // Reads of every actor answer once every actor is read (an instance reads them after it starts taking
  // inputs), or are refused as unavailable after 10 s; the status or history of one model reads it first.
  status: {
    key: null,
    run: async (w, _key, body) => {
      const query = parseInput(StatusQuery, body ?? {}, 'status query');
      await (query.model_id === undefined ? w.readable() : w.readableModel(query.model_id));
      return w.status(query.model_id);
    },
  },
  history: {
    key: null,
    run: async (w, _key, body) => {
      const query = parseInput(HistoryQuery, body ?? {}, 'history query');
      return w.history({
        ...(query.model_id !== undefined ? { model_id: query.model_id } : {}),
        ...(query.limit !== undefined ? { limit: query.limit } : {}),
      });
    },
  },
};

export type CommandReply =
  | ({ ok: true } & Record<string, unknown>)
  | { ok: false; error: { code: string; message: string; issues?: string[] } };

/** The body of a command: empty means no fields; anything else must be JSON. */
function parseBody(data: Uint8Array): unknown {
  if (data.length === 0) return undefined;
  const text = new TextDecoder().decode(data);
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new WardenError(
      'invalid_input',
      `expected a JSON body, could not parse it: ${(error as Error).message}`,
    );
  }
}

/** Runs one command against Warden: `{ok: true, ...result}` or `{ok: false, error: {code, message}}`. */
export async function runCommand(
  warden: Warden,
  prefix: string,
  subject: string,
  data: Uint8Array,
): Promise<CommandReply> {
  try {
    const tokens = subject.split('.');
    const verb = tokens[2] ?? '';
    const command = COMMANDS[verb];
    if (tokens[0] !== prefix || tokens[1] !== 'cmd' || !command) {
      throw new ValidationError('command', [
        `subject: expected ${prefix}.cmd.<${Object.keys(COMMANDS).join('|')}>, received "${subject}"`,
      ]);
    }
    const expected = command.key === null ? 3 : 4;
    if (tokens.length !== expected) {
      const shape = command.key === null ? `${prefix}.cmd.${verb}` : `${prefix}.cmd.${verb}.<${command.key}>`;
      throw new ValidationError('command', [`subject: expected ${shape}, received "${subject}"`]);
    }
    const result = await command.run(warden, tokens[3] ?? '', parseBody(data));
    return { ok: true, ...result };
  } catch (error) {
    return { ok: false, error: toWardenError(error).toJSON() };
  }
}

/**
 * Answers commands (request/reply) on `<prefix>.cmd.>`. All instances join one queue group: each command
 * is answered by one of them; state changes are revision-checked in the store, so any instance will do.
 */
export interface ResponderOptions {
  /** Default `<prefix>.cmd.>`. */
  readonly subject?: string;
  /** The command subject a message on `subject` stands for (forwarded commands). */
  readonly translate?: (subject: string) => string;
  /** Where a command must go instead (the instance holding its model's partition), or null: answer here. */
  readonly forward?: (subject: string) => string | null;
}

/** How long a forwarded command waits for the instance that holds its model. */
const FORWARD_TIMEOUT_MS = 10_000;

export class CommandResponder {
  private readonly sub: Subscription;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly warden: Warden,
    private readonly prefix: string,
    queue: string | undefined,
    private readonly logger: Logger,
    private readonly options: ResponderOptions = {},
  ) {
    this.sub = nc.subscribe(options.subject ?? `${prefix}.cmd.>`, {
      ...(queue !== undefined ? { queue } : {}),
      callback: (error, m) => {
        if (error) {
          logger.warn({ err: error }, 'command subscription error');
          return;
        }
        const work = this.answer(m).finally(() => this.inFlight.delete(work));
        this.inFlight.add(work);
      },
    });
  }

  /** Stops taking commands and waits for the ones being answered. */
  async close(): Promise<void> {
    this.sub.unsubscribe();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Hands the command to the instance that holds its model (tried again while the partition moves). */
  private async forwardTo(target: string, data: Uint8Array): Promise<CommandReply> {
    const deadline = Date.now() + FORWARD_TIMEOUT_MS;
    for (;;) {
      try {
        const answer = await this.nc.request(target, data, { timeout: Math.max(deadline - Date.now(), 1) });
        return answer.json<CommandReply>();
      } catch (error) {
        if (Date.now() + 100 >= deadline)
          return {
            ok: false,
            error: new WardenError(
              'unavailable',
              `the instance taking this model did not answer (${error instanceof Error ? error.message : String(error)}); try again`,
              { retryable: true },
            ).toJSON(),
          };
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  private async answer(m: Msg): Promise<void> {
    const subject = this.options.translate ? this.options.translate(m.subject) : m.subject;
    const target = this.options.forward?.(subject) ?? null;
    const reply =
      target !== null
        ? await this.forwardTo(target, m.data)
        : await runCommand(this.warden, this.prefix, subject, m.data);
    if (!reply.ok && (reply.error.code === 'internal' || reply.error.code === 'unavailable')) {
      this.logger.error({ subject: m.subject, error: reply.error }, 'command failed');
    } else {
      // Reads (status, history) may be polled; only changes belong in the info log.
      const read = /\.cmd\.(status|history)$/.test(m.subject);
      this.logger[read ? 'debug' : 'info'](
        { subject: m.subject, ok: reply.ok, ...(reply.ok ? {} : { code: reply.error.code }) },
        'command',
      );
    }
    if (!m.reply) return;
    try {
      m.respond(encodeJson(reply));
    } catch (error) {
      this.logger.warn({ err: error, subject: m.subject }, 'could not send the reply');
    }
  }
}
