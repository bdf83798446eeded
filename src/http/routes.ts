import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { toWardenError } from '../domain/errors.ts';
import { auditName } from './auth.ts';
import { errorBody } from './errors.ts';
import {
  ConfigParamsSchema,
  HistoryQuerySchema,
  HttpApproveSchema,
  HttpPauseSchema,
  HttpResumeSchema,
  HttpRollbackSchema,
  ModelParamsSchema,
  parseBody,
  parseInput,
} from './schemas.ts';
import type { RouteContext } from './server.ts';
import { registerReplayRoutes } from './replay-routes.ts';

async function timed<T>(ctx: RouteContext, kind: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    ctx.metrics?.observeProcessing(kind, (performance.now() - started) / 1000);
  }
}

export function registerRoutes(app: FastifyInstance, ctx: RouteContext): void {
  registerProbes(app, ctx);
  registerReads(app, ctx);
  registerInputs(app, ctx);
  registerModelCommands(app, ctx);
  registerTrainingCommands(app, ctx);
  registerReplayRoutes(app, ctx);
}

function registerProbes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const readiness = ctx.isReady();
    if (readiness.ready) return { status: 'ready' };
    return reply.code(503).send(errorBody('unavailable', `not ready: ${readiness.reason}`));
  });
  app.get('/metrics', async (_request, reply) => {
    if (!ctx.metrics)
      return reply.code(404).send(errorBody('not_found', 'metrics are not enabled in this server'));
    return reply.type(ctx.metrics.contentType).send(await ctx.metrics.render());
  });
}

function registerReads(app: FastifyInstance, ctx: RouteContext): void {
  const { warden } = ctx;
  // A read of every actor answers once every actor is read (NATS mode reads them after it starts taking
  // inputs), or is refused as unavailable after 10 s; a read of one model or config reads it first.
  app.get('/v1/models', async () => {
    await warden.readable();
    return { models: warden.status().models };
  });
  app.get('/v1/models/:model_id', async (request) => {
    const { model_id } = parseInput(ModelParamsSchema, request.params, 'path');
    await warden.readableModel(model_id);
    const model = warden.status(model_id).models[0]!;
    return { model, training: warden.trainingStatus(model.config_key) };
  });
  app.get('/v1/training', async () => {
    await warden.readable();
    return { training: warden.status().training };
  });
  // The trainer's "may I train?": a config Warden never paused is running.
  app.get('/v1/training/:config_key', async (request) => {
    const { config_key } = parseInput(ConfigParamsSchema, request.params, 'path');
    await warden.readableTraining(config_key);
    return warden.trainingStatus(config_key);
  });
  app.get('/v1/rollbacks', async (request) => {
    const query = parseInput(HistoryQuerySchema, request.query, 'query');
    return warden.history(query); // waits for the read itself (see Warden.history)
  });
}

function registerInputs(app: FastifyInstance, ctx: RouteContext): void {
  const input = (kind: 'evaluation' | 'promotion') => async (request: FastifyRequest) => {
    const caller = ctx.authenticate(request, 'input');
    return timed(ctx, kind, async () => {
      try {
        const result =
          kind === 'evaluation'
            ? await ctx.warden.evaluate(request.body)
            : await ctx.warden.promote(request.body);
        ctx.logger.debug(
          { kind, from: caller.identity, model_id: result.model_id, outcome: result.outcome.kind },
          `${kind} accepted`,
        );
        return result;
      } catch (caught) {
        const error = toWardenError(caught);
        // The error handler counts the refusal and logs internal failures with their error id.
        if (error.code !== 'internal') {
          ctx.logger.warn(
            { kind, from: caller.identity, code: error.code },
            `rejected ${kind}: ${error.message}`,
          );
        }
        throw error;
      }
    });
  };
  app.post('/v1/evaluations', input('evaluation'));
  app.post('/v1/promotions', input('promotion'));
}

function registerModelCommands(app: FastifyInstance, ctx: RouteContext): void {
  const { warden, logger } = ctx;
  const audit = (
    command: string,
    target: Record<string, string>,
    by: string,
    outcome: { kind: string },
    state: string,
  ) => logger.info({ command, ...target, by, outcome: outcome.kind, state }, `operator command: ${command}`);

  app.post('/v1/models/:model_id/approve', async (request) => {
    const caller = ctx.authenticate(request, 'command');
    const { model_id } = parseInput(ModelParamsSchema, request.params, 'path');
    const body = parseBody(HttpApproveSchema, request.body, 'approval');
    const by = auditName(caller, body.by);
    const result = await timed(ctx, 'command', () => warden.approve(model_id, { ...body, by }));
    audit('approve', { model_id }, by, result.outcome, result.state);
    return { model_id, by, ...result };
  });

  app.post('/v1/models/:model_id/reject', async (request) => {
    const caller = ctx.authenticate(request, 'command');
    const { model_id } = parseInput(ModelParamsSchema, request.params, 'path');
    const body = parseBody(HttpApproveSchema, request.body, 'rejection');
    const by = auditName(caller, body.by);
    const result = await timed(ctx, 'command', () => warden.reject(model_id, { ...body, by }));
    audit('reject', { model_id }, by, result.outcome, result.state);
    return { model_id, by, ...result };
  });

  app.post('/v1/models/:model_id/rollback', async (request) => {
    const caller = ctx.authenticate(request, 'command');
    const { model_id } = parseInput(ModelParamsSchema, request.params, 'path');
    const body = parseBody(HttpRollbackSchema, request.body, 'rollback command');
    const by = auditName(caller, body.by);
    const result = await timed(ctx, 'command', () => warden.rollback(model_id, { ...body, by }));
    audit('rollback', { model_id }, by, result.outcome, result.state);
    return { model_id, by, ...result };
  });
}

function registerTrainingCommands(app: FastifyInstance, ctx: RouteContext): void {
  const { warden, logger } = ctx;
  app.post('/v1/training/:config_key/pause', async (request) => {
    const caller = ctx.authenticate(request, 'command');
    const { config_key } = parseInput(ConfigParamsSchema, request.params, 'path');
    const body = parseBody(HttpPauseSchema, request.body, 'pause command');
    const by = auditName(caller, body.by);
    const result = await timed(ctx, 'command', () => warden.pause(config_key, { ...body, by }));
    logger.info(
      { command: 'pause', config_key, by, outcome: result.outcome.kind },
      'operator command: pause',
    );
    return { config_key, by, ...result };
  });

  app.post('/v1/training/:config_key/resume', async (request) => {
    const caller = ctx.authenticate(request, 'command');
    const { config_key } = parseInput(ConfigParamsSchema, request.params, 'path');
    const body = parseBody(HttpResumeSchema, request.body, 'resume command');
    const by = auditName(caller, body.by);
    const result = await timed(ctx, 'command', () => warden.resume(config_key, { ...body, by }));
    logger.info(
      { command: 'resume', config_key, by, outcome: result.outcome.kind },
      'operator command: resume',
    );
    return { config_key, by, ...result };
  });
}
