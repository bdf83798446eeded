import { existsSync, readFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createModelMachine } from '../machines/model-machine.ts';
import { modelPolicyFrom } from '../machines/model-policy.ts';
import { createTrainingMachine } from '../machines/training-machine.ts';
import { machineGraph } from '../ui/graph.ts';
import { errorBody } from './errors.ts';
import { createLiveHub, type LiveHub, type LiveOptions } from './live.ts';
import { ModelParamsSchema, parseInput } from './schemas.ts';
import type { RouteContext } from './server.ts';

/**
 * Where `npm run build:ui` writes the dashboard: dist/dashboard at the package root (src/http and dist/http
 * alike), or WARDEN_UI_DIR.
 */
export const UI_BUILD_DIR = resolve(
  process.env.WARDEN_UI_DIR || fileURLToPath(new URL('../../dist/dashboard', import.meta.url)),
);

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

/** How long a timeline read waits for in-flight commits at most. */
const TIMELINE_SETTLE_MS = 1000;

/** The dashboard's pages never load anything from elsewhere: no CDN, nothing at run time but this server. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export interface UiRouteOptions {
  /** Where the built dashboard is (default: dist/ui). */
  readonly buildDir?: string | undefined;
  readonly live?: LiveOptions | undefined;
}

/**
 * The operator dashboard at /ui (static files built by `npm run build:ui`), and the reads only it needs
 * under /ui/api: who the token is, a model's timeline, the machine definitions, the live stream. Reads
 * are authenticated by the server's read hook; actions go through the /v1 command routes.
 */
export function registerUiRoutes(
  app: FastifyInstance,
  ctx: RouteContext,
  options: UiRouteOptions = {},
): LiveHub {
  const dir = options.buildDir ?? UI_BUILD_DIR;
  const { warden } = ctx;
  const live = createLiveHub(warden, ctx.logger.child({ component: 'live' }), options.live);

  const file = (name: string): { body: Buffer; type: string } | null => {
    const path = resolve(dir, name);
    if (!path.startsWith(dir + '/') || !existsSync(path)) return null;
    return { body: readFileSync(path), type: TYPES[extname(path)] ?? 'application/octet-stream' };
  };

  const index = async (_request: unknown, reply: import('fastify').FastifyReply) => {
    const page = file('index.html');
    if (!page)
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(`the dashboard is not built in ${dir}: run "npm run build:ui" (or "npm run build")\n`);
    return reply
      .header('content-security-policy', CSP)
      .header('cache-control', 'no-store')
      .type(page.type)
      .send(page.body);
  };
  app.get('/ui', index);
  app.get('/ui/', index);
  app.get('/ui/assets/*', async (request, reply) => {
    const name = (request.params as { '*': string })['*'];
    const asset = /^[\w.-]+$/.test(name) ? file(join('assets', name)) : null;
    if (!asset) return reply.code(404).send(errorBody('not_found', `no dashboard asset ${name}`));
    // Built file names carry a content hash: they never change.
    return reply
      .header('cache-control', 'public, max-age=31536000, immutable')
      .type(asset.type)
      .send(asset.body);
  });

  app.get('/ui/api/session', async (request) => {
    const caller = ctx.authenticate(request, 'read');
    const canAct = ctx.auth.mode === 'loopback' || caller.role === 'operator';
    return {
      identity: caller.identity,
      role: caller.role ?? null,
      reads_need_token: ctx.auth.readsNeedToken,
      can_act: canAct,
      auth_mode: ctx.auth.mode,
    };
  });

  const graphs = {
    model: machineGraph(createModelMachine(modelPolicyFrom(warden.config))),
    training: machineGraph(createTrainingMachine({ autoResumeMs: null })),
  };
  app.get('/ui/api/machines', async (request) => {
    ctx.authenticate(request, 'read');
    return graphs;
  });

  app.get('/ui/api/models/:model_id/timeline', async (request) => {
    ctx.authenticate(request, 'read');
    const { model_id } = parseInput(ModelParamsSchema, request.params, 'path');
    await warden.readableModel(model_id);
    const model = warden.status(model_id).models[0]!;
    // The live stream shows a change as soon as the actor takes it, a moment before its commit writes the
    // timeline line: let what is in flight land first (bounded: under constant traffic, answer anyway).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      warden.idle(),
      new Promise((resolve) => (timer = setTimeout(resolve, TIMELINE_SETTLE_MS))),
    ]);
    clearTimeout(timer);
    const store = warden.store;
    const [own, training, rollbacks] = await Promise.all([
      store.timeline ? store.timeline('model', model_id, 200) : Promise.resolve(null),
      store.timeline ? store.timeline('training', model.config_key, 50) : Promise.resolve(null),
      warden.history({ model_id, limit: 50 }),
    ]);
    return { model_id, timeline: own, training: training, rollbacks: rollbacks.rollbacks };
  });

  app.get('/ui/api/live', async (request, reply) => {
    ctx.authenticate(request, 'read');
    reply.hijack();
    live.attach(reply.raw);
  });

  return live;
}
