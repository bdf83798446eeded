import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { WardenError } from '../domain/errors.ts';
import type { Warden } from '../warden.ts';
import { createAuthPolicy, type Access, type AuthPolicy, type Caller } from './auth.ts';
import {
  JSON_CONTENT_TYPE,
  STATUS_BY_CODE,
  describeClientError,
  errorBody,
  internalErrorBody,
  isClientError,
  newErrorId,
  wardenErrorBody,
} from './errors.ts';
import { registerRoutes } from './routes.ts';
import { collectRoutes, registerOpenApi } from './openapi.ts';
import { registerUiRoutes, type UiRouteOptions } from './ui-routes.ts';

/** What the API needs from the metrics (src/metrics), so this module does not depend on prom-client. */
export interface HttpMetrics {
  readonly contentType: string;
  render(): Promise<string>;
  httpRequest(method: string, route: string, status: number): void;
  observeProcessing(kind: string, seconds: number): void;
}

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly operatorTokens: readonly string[];
  readonly producerTokens: readonly string[];
  readonly viewerTokens?: readonly string[] | undefined;
  readonly logger: Logger;
  readonly metrics?: HttpMetrics | undefined;
  /** Inputs refused at the edge are counted like those refused on the bus. */
  readonly onRejected?: ((kind: string, error: WardenError) => void) | undefined;
  /** Extra readiness (NATS mode: connected); Warden itself is started before the server listens. */
  readonly ready?: (() => boolean) | undefined;
  /** The dashboard at /ui (its build directory, the live stream's pace). */
  readonly ui?: UiRouteOptions | undefined;
}

export interface HttpServer {
  /** e.g. http://127.0.0.1:8080 (the real port when 0 was asked for). */
  readonly url: string;
  readonly auth: AuthPolicy;
  close(): Promise<void>;
}

/** What route handlers get: the Warden, and the means to authenticate and time a request. */
export interface RouteContext {
  readonly warden: Warden;
  readonly logger: Logger;
  readonly metrics: HttpMetrics | undefined;
  readonly onRejected: HttpServerOptions['onRejected'];
  readonly auth: AuthPolicy;
  /** Throws unauthorized / forbidden; otherwise the caller, for the audit log. */
  authenticate(request: FastifyRequest, access: Access): Caller;
  isReady(): { ready: true } | { ready: false; reason: string };
}

/** The largest body the API reads; larger ones get a 413 that says this limit. */
export const BODY_LIMIT_BYTES = 1024 * 1024;
/**
 * Path parameters up to this length reach our own validation (ids are 1 to 128, and a longer one gets a
 * 400 saying so); fastify's default of 100 answered its own 414 to ids the contract allows.
 */
export const MAX_PARAM_LENGTH = 1024;

/** The routes that take producer inputs: every refusal on them is counted, under its kind. */
const INPUT_ROUTES: Readonly<Record<string, 'evaluation' | 'promotion'>> = {
  '/v1/evaluations': 'evaluation',
  '/v1/promotions': 'promotion',
};

/**
 * JSON is the only body the API reads: any other content type (text/plain included, which fastify would
 * otherwise hand over as a string) is a 415. Empty bodies are `undefined` (commands default their
 * fields).
 */
function installJsonParser(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(JSON_CONTENT_TYPE, { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      const problem = new WardenError(
        'invalid_input',
        `expected a JSON body, could not parse it: ${(error as Error).message}`,
      );
      done(Object.assign(problem, { statusCode: 400 }), undefined);
    }
  });
}

function replyError(
  reply: FastifyReply,
  error: WardenError,
  status = STATUS_BY_CODE[error.code],
): FastifyReply {
  if (error.code === 'unauthorized') reply.header('www-authenticate', 'Bearer');
  return reply.code(status).send(wardenErrorBody(error));
}

const header = (request: FastifyRequest, name: string): string | undefined => {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
};

/**
 * The HTTP API over a running Warden: the same operations, semantics and error codes as the NATS
 * commands. Errors are `{error: {code, message, issues?}}`.
 */
export async function startHttpServer(warden: Warden, options: HttpServerOptions): Promise<HttpServer> {
  const logger = options.logger.child({ component: 'http' });
  const auth = createAuthPolicy(options);
  let closing = false;
  const app = Fastify({
    logger: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // A bad URL or an over-long path parameter is refused before routing: same error shape as the rest.
    frameworkErrors: (error, request, reply) => handleError(error, request, reply),
  });
  installJsonParser(app);

  const handleError = (error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    let refusal: WardenError | null = error instanceof WardenError ? error : null;
    let status = refusal ? STATUS_BY_CODE[refusal.code] : 500;
    if (!refusal && isClientError(error)) {
      // fastify refused the request before a handler ran: wrong content type, body too large, bad URL.
      ({ status, error: refusal } = describeClientError(error, {
        contentType: header(request, 'content-type'),
        contentLength: header(request, 'content-length'),
        // The route's own limit when it has one (a replay job's posted history).
        bodyLimit: request.routeOptions?.bodyLimit ?? BODY_LIMIT_BYTES,
        maxParamLength: MAX_PARAM_LENGTH,
      }));
    }
    if (!refusal || status >= 500) {
      if (refusal?.code === 'unavailable') return replyError(reply, refusal);
      // Details (guards, stack, cause) go to the log only, under an id the caller can quote.
      // One id for one failure: the runtime's, when it has logged the failure under one already.
      const errorId = (error instanceof WardenError ? error.errorId : undefined) ?? newErrorId();
      logger.error(
        { err: error, error_id: errorId, method: request.method, url: request.url },
        'request failed',
      );
      return reply.code(500).send(internalErrorBody(errorId));
    }
    // Every refused producer input is counted, whatever refused it: fastify, auth or validation.
    const kind = INPUT_ROUTES[request.routeOptions?.url ?? ''];
    if (kind) options.onRejected?.(kind, refusal);
    return replyError(reply, refusal, status);
  };
  app.setErrorHandler((error, request, reply) => handleError(error, request, reply));

  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send(
        errorBody(
          'not_found',
          `no route ${request.method} ${request.url.split('?')[0]}; see docs/operators.md for the API`,
        ),
      );
  });

  app.addHook('onResponse', (request, reply, done) => {
    options.metrics?.httpRequest(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode);
    done();
  });

  const context: RouteContext = {
    warden,
    logger,
    metrics: options.metrics,
    onRejected: options.onRejected,
    auth,
    authenticate(request, access) {
      const result = auth.authenticate(request.headers.authorization, access);
      if (result instanceof WardenError) throw result;
      return result;
    },
    isReady() {
      if (closing) return { ready: false, reason: 'shutting down' };
      if (options.ready && !options.ready()) return { ready: false, reason: 'not connected to NATS yet' };
      return { ready: true };
    },
  };
  // Reads of the API need a token once viewer tokens are configured (probes and /ui's files never do).
  app.addHook('onRequest', async (request) => {
    if ((request.method === 'GET' || request.method === 'HEAD') && request.url.startsWith('/v1/'))
      context.authenticate(request, 'read');
  });
  const routes = collectRoutes(app);
  registerRoutes(app, context);
  const live = registerUiRoutes(app, context, options.ui);
  registerOpenApi(app, routes);
  app.addHook('preClose', (done) => {
    live.close();
    done();
  });

  const url = await app.listen({ host: options.host, port: options.port });
  logger.info({ url, auth: auth.mode }, `HTTP API on ${url}; ${auth.summary}`);

  return {
    url,
    auth,
    async close() {
      closing = true;
      await app.close();
    },
  };
}
