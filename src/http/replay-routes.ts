import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { REPLAY_BODY_LIMIT_BYTES, ReplayJobs } from '../lab/jobs.ts';
import { parseInput } from './schemas.ts';
import type { RouteContext } from './server.ts';
import { errorBody } from './errors.ts';

export const ReplayParamsSchema = z
  .object({ job_id: z.string().regex(/^[0-9a-f-]{36}$/, 'expected a replay job id (a UUID)') })
  .strict();

/**
 * The policy lab over HTTP: POST /v1/replays starts a replay job (a candidate configuration beside the
 * service's own, over the recorded history or posted JSON Lines), GET /v1/replays/:job_id reads its status
 * and, once done, its report (the same report as `warden replay --json`).
 */
export function registerReplayRoutes(app: FastifyInstance, ctx: RouteContext): ReplayJobs {
  const jobs = new ReplayJobs({ config: ctx.warden.config, journal: ctx.warden.journal, logger: ctx.logger });
  app.post(
    '/v1/replays',
    {
      // A posted history can be larger than other bodies; the caller is checked before it is read.
      bodyLimit: REPLAY_BODY_LIMIT_BYTES,
      onRequest: async (request) => {
        ctx.authenticate(request, 'command');
      },
    },
    async (request) => {
      const caller = ctx.authenticate(request, 'command');
      const job = jobs.start(request.body);
      ctx.logger.info({ jobId: job.job_id, by: caller.identity }, 'replay job started');
      return job;
    },
  );
  app.get('/v1/replays', async () => ({ jobs: jobs.list().map(({ report: _report, ...job }) => job) }));
  app.get('/v1/replays/:job_id', async (request, reply) => {
    const { job_id } = parseInput(ReplayParamsSchema, request.params, 'path');
    const job = jobs.get(job_id);
    if (!job) {
      return reply.code(404).send(errorBody('not_found', `no replay job ${job_id} (the newest 20 are kept)`));
    }
    return job;
  });
  return jobs;
}
