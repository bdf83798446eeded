import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { WardenError } from '../domain/errors.ts';
import type { Warden } from '../warden.ts';
import { createAuthPolicy, type Access, type AuthPolicy, type Caller } from './auth.ts';
import { STATUS_BY_CODE, errorBody, isClientError, wardenErrorBody } from './errors.ts';
import { registerRoutes } from './routes.ts';
import { collectRoutes, registerOpenApi } from './openapi.ts';

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
  readonly logger: Logger;
  readonly metrics?: HttpMetrics | undefined;
  /** Inputs refused at the edge are counted like those refused on the bus. */
  readonly onRejected?: ((kind: string, error: WardenError) => void) | undefined;
  /** Extra readiness (NATS mode: connected); Warden itself is started before the server listens. */
  readonly ready?: (() => boolean) | undefined;
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
  /** Throws unauthorized / forbidden; otherwise the caller, for the audit log. */
  authenticate(request: FastifyRequest, access: Access): Caller;
  isReady(): { ready: true } | { ready: false; reason: string };
}

/** Empty bodies are `undefined` (commands default their fields); anything else must be JSON. */
function installJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
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

function replyError(reply: FastifyReply, error: WardenError): FastifyReply {
  if (error.code === 'unauthorized') reply.header('www-authenticate', 'Bearer');
  return reply.code(STATUS_BY_CODE[error.code]).send(wardenErrorBody(error));
}

/**
 * The HTTP API over a running Warden: the same operations, semantics and error codes as the NATS
 * commands. Errors are `{error: {code, message, issues?}}`.
 */
export async function startHttpServer(warden: Warden, options: HttpServerOptions): Promise<HttpServer> {
  const logger = options.logger.child({ component: 'http' });
  const auth = createAuthPolicy(options);
  let closing = false;
  const app = Fastify({ logger: false, return503OnClosing: true, forceCloseConnections: 'idle' });
  installJsonParser(app);

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof WardenError) {
      if (error.code === 'internal') logger.error({ err: error, url: request.url }, 'request failed');
      return replyError(reply, error);
    }
    if (isClientError(error)) {
      // fastify refused the request before a handler ran: wrong content type, body too large, bad JSON.
      const hint = error.statusCode === 415 ? ' (expected Content-Type: application/json)' : '';
      return reply.code(error.statusCode).send(errorBody('invalid_input', `${error.message}${hint}`));
    }
    logger.error({ err: error, url: request.url }, 'request failed');
    return replyError(reply, new WardenError('internal', 'internal error; the service log has the details'));
  });

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
  const routes = collectRoutes(app);
  registerRoutes(app, context);
  registerOpenApi(app, routes);

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
