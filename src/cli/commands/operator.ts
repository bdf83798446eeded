import { InvalidArgumentError, Option, type Command } from 'commander';
import type { CommandReply, StatusView, WardenClient } from '../client.ts';
import { abortableSleep, watch } from '../watch.ts';
import { formatCommandReply, formatHistory, formatModel, formatStatus } from '../format.ts';
import {
  clientFor,
  defaultOperator,
  requireKey,
  runRequest,
  withConnectionOptions,
  type ConnectionOptions,
} from './connection.ts';
import { registerDiagramCommand } from './diagram.ts';
import { registerStartCommand } from './start.ts';

function parseLimit(raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1 || value > 1000)
    throw new InvalidArgumentError('expected an integer from 1 to 1000.');
  return value;
}

type WithBy = ConnectionOptions & { by: string };
type StatusOptions = ConnectionOptions & { watch?: boolean; interval: number; count?: number };

function parseInterval(raw: string): number {
  const value = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || value < 0.2 || value > 3600)
    throw new InvalidArgumentError('expected a number of seconds from 0.2 to 3600.');
  return value;
}

/** `status --watch`: renders again on every change until Ctrl-C (or --count renders), then exits 0. */
async function watchStatus(
  command: Command,
  options: StatusOptions,
  model: string | undefined,
  render: (view: StatusView) => string,
): Promise<void> {
  const client = await clientFor(command, options);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await watch({
      fetch: () => client.status(model),
      render: options.json ? (view) => JSON.stringify(view) : render,
      write: (text) => process.stdout.write(text),
      sleep: abortableSleep,
      intervalMs: options.interval * 1000,
      maxRenders: options.count,
      signal: stop.signal,
      clear: !options.json && process.stdout.isTTY === true,
      bare: options.json === true,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.close();
  }
}

/** A command acting on one model or config: validates the key, sends, prints one line (or the JSON). */
function registerAction(
  program: Command,
  spec: { name: string; argument: 'model' | 'config_key'; description: string },
  configure: (command: Command) => Command,
  send: (
    client: WardenClient,
    key: string,
    options: WithBy & Record<string, string | undefined>,
  ) => Promise<CommandReply>,
): void {
  const command = program
    .command(`${spec.name} <${spec.argument}>`)
    .description(spec.description)
    .addOption(
      new Option('--by <name>', 'who asks, for the audit log')
        .env('WARDEN_BY')
        .default(defaultOperator(), 'your user name'),
    );
  configure(command);
  withConnectionOptions(command).action(
    async (key: string, options: WithBy & Record<string, string | undefined>, self: Command) => {
      requireKey(options, spec.argument, key);
      await runRequest(
        self,
        options,
        async (client) => {
          const reply = await send(client, key, options);
          return { ...reply, by: reply.by ?? options.by };
        },
        (reply) => formatCommandReply(spec.name, key, reply),
      );
    },
  );
}

/**
 * An optional note for the audit log, `--note` as the API names it; `--reason` (what pause and rollback
 * take) is taken as the same, unlisted, rather than refused with an unhelpful suggestion.
 */
function withNote(command: Command): Command {
  return command
    .option('--note <text>', 'why, for the audit log')
    .addOption(new Option('--reason <text>').hideHelp());
}
const noteOf = (o: Record<string, string | undefined>): string | undefined => o.note ?? o.reason;

/**
 * The operator's commands: status, history, approve, reject, rollback, pause, resume (against a running
 * Warden, over HTTP or NATS), and diagram and start (local).
 */
export function registerOperatorCommands(program: Command): void {
  withConnectionOptions(
    program
      .command('status [model]')
      .description(
        'Every model and training config, or one model in detail (state, versions, pending approval)',
      )
      .option('--watch', 'look again every --interval and show it again when it changed, until Ctrl-C')
      .option('--interval <seconds>', 'with --watch: seconds between looks (0.2 to 3600)', parseInterval, 2)
      .option('--count <n>', 'with --watch: stop after this many renders (1 to 1000)', parseLimit),
  ).action(async (model: string | undefined, options: StatusOptions, self: Command) => {
    if (model !== undefined) requireKey(options, 'model', model);
    const render = (view: StatusView) =>
      model === undefined ? formatStatus(view) : formatModel(view.models[0]!, view.training[0]);
    if (!options.watch) {
      await runRequest(self, options, (client) => client.status(model), render);
      return;
    }
    await watchStatus(self, options, model, render);
  });

  withConnectionOptions(
    program
      .command('history [model]')
      .description('Rollbacks, newest first, with their trigger, who asked and why')
      .option('--limit <n>', 'at most this many (1 to 1000)', parseLimit, 20),
  ).action(
    async (model: string | undefined, options: ConnectionOptions & { limit: number }, self: Command) => {
      if (model !== undefined) requireKey(options, 'model', model);
      await runRequest(
        self,
        options,
        (client) => client.history({ model_id: model, limit: options.limit }),
        formatHistory,
      );
    },
  );

  registerAction(
    program,
    {
      name: 'approve',
      argument: 'model',
      description: "Approve a model's pending rollback: it rolls back and its training config pauses",
    },
    withNote,
    (client, key, o) => client.modelCommand('approve', key, { by: o.by, note: noteOf(o) }),
  );
  registerAction(
    program,
    {
      name: 'reject',
      argument: 'model',
      description: "Reject a model's pending rollback: the model stays in production",
    },
    withNote,
    (client, key, o) => client.modelCommand('reject', key, { by: o.by, note: noteOf(o) }),
  );
  registerAction(
    program,
    {
      name: 'rollback',
      argument: 'model',
      description: 'Roll a model back by hand to its last known-good version (or --to one)',
    },
    (c) =>
      c
        .requiredOption('--reason <text>', 'why, for the audit log')
        .option('--to <version>', 'the version to roll back to'),
    (client, key, o) =>
      client.modelCommand('rollback', key, { by: o.by, reason: o.reason, to_version: o.to }),
  );
  registerAction(
    program,
    {
      name: 'pause',
      argument: 'config_key',
      description: 'Pause a training config: trainers asking "may I train?" hear no',
    },
    (c) => c.requiredOption('--reason <text>', 'why, for the audit log'),
    (client, key, o) => client.trainingCommand('pause', key, { by: o.by, reason: o.reason! }),
  );
  registerAction(
    program,
    { name: 'resume', argument: 'config_key', description: 'Resume a paused training config' },
    withNote,
    (client, key, o) => client.trainingCommand('resume', key, { by: o.by, note: noteOf(o) }),
  );

  registerDiagramCommand(program);
  registerStartCommand(program);
}
