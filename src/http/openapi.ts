import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  EvaluationInputSchema,
  InputMetadataSchema,
  OUTPUT_EVENTS,
  PromotionInputSchema,
} from '../domain/events.ts';
import { MODEL_STATES } from '../machines/model-types.ts';
import { TRAINING_STATES } from '../machines/training-types.ts';
import { wardenVersion } from '../version.ts';
import { STATUS_BY_CODE } from './errors.ts';
import {
  ConfigParamsSchema,
  HistoryQuerySchema,
  HttpApproveSchema,
  HttpPauseSchema,
  HttpResumeSchema,
  HttpRollbackSchema,
  ModelParamsSchema,
} from './schemas.ts';
import { ReplayParamsSchema } from './replay-routes.ts';
import { ReplayJobRequestSchema } from '../lab/jobs.ts';

/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the same zod schemas that validate requests
 * (z.toJSONSchema, JSON Schema 2020-12: OpenAPI 3.1's own dialect), and the JSON Schemas of the wire
 * payloads (inputs, commands, output events) that docs/schemas/ holds.
 */

type JsonSchema = Record<string, unknown>;

/** A request schema as a client must send it (the input side of transforms and defaults). */
function requestSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  }) as JsonSchema;
  return rest;
}

/** A payload as Warden produces it (the output side). */
function responseSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'output',
    unrepresentable: 'any',
  }) as JsonSchema;
  return rest;
}

const ErrorSchema = z
  .object({
    error: z
      .object({
        code: z.enum(Object.keys(STATUS_BY_CODE) as [string, ...string[]]),
        message: z.string(),
        issues: z.array(z.string()).optional(),
        /** Only on 500s: the id of the service log line with the details. */
        error_id: z.string().optional(),
      })
      .strict(),
  })
  .strict();

/** The trainer's "may I train?" answer (src/warden.ts TrainingStatus): every field, no other. */
const TrainingStatusSchema = z
  .object({
    config_key: z.string(),
    status: z.enum(TRAINING_STATES),
    may_train: z.boolean(),
    /** false: Warden has never seen this config key (a typo?): refuse to train. */
    known: z.boolean(),
    reason: z.string().nullable(),
    by: z.string().nullable(),
    since: z.iso.datetime().nullable(),
    auto_resume_at: z.iso.datetime().nullable(),
  })
  .strict();

/** A model's status (src/warden.ts ModelStatus): the fields a client relies on; more may come. */
const ModelStatusSchema = z.looseObject({
  model_id: z.string(),
  config_key: z.string(),
  state: z.enum(MODEL_STATES),
  production_version: z.string().nullable(),
  consecutive_regressions: z.number().int(),
  pending_approval: z
    .looseObject({
      detection_id: z.string(),
      severity: z.string(),
      deadline: z.iso.datetime(),
      to_version: z.string(),
    })
    .nullable(),
  versions: z.array(z.looseObject({ version: z.string(), promoted_at: z.iso.datetime() })),
});

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** Every wire payload with a JSON Schema, by the file name it gets in docs/schemas/. */
export function wireSchemas(): Record<string, JsonSchema> {
  const schemas: Record<string, JsonSchema> = {
    'evaluation-input': requestSchema(EvaluationInputSchema),
    'promotion-input': requestSchema(PromotionInputSchema),
    metadata: requestSchema(InputMetadataSchema),
    'approve-command': requestSchema(HttpApproveSchema),
    'reject-command': requestSchema(HttpApproveSchema),
    'rollback-command': requestSchema(HttpRollbackSchema),
    'pause-command': requestSchema(HttpPauseSchema),
    'resume-command': requestSchema(HttpResumeSchema),
    error: responseSchema(ErrorSchema),
    'training-status': responseSchema(TrainingStatusSchema),
    'model-status': responseSchema(ModelStatusSchema),
    'replay-job-request': requestSchema(ReplayJobRequestSchema),
  };
  const seen = new Set<z.ZodType>();
  for (const spec of Object.values(OUTPUT_EVENTS)) {
    // The severity-named regression events share one schema: written once, as regression_detected.
    if (seen.has(spec.schema)) continue;
    seen.add(spec.schema);
    schemas[spec.kind.replace(/_/g, '-')] = responseSchema(spec.schema);
  }
  return schemas;
}

/** The JSON Schema file of one payload: the 2020-12 dialect and a title. */
export function schemaFile(name: string, schema: JsonSchema): JsonSchema {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: name,
    ...schema,
  };
}

interface Operation {
  readonly summary: string;
  readonly tags: readonly string[];
  readonly params?: z.ZodObject;
  readonly query?: z.ZodType;
  readonly body?: { readonly ref: string; readonly required: boolean };
  readonly response?: { readonly description: string; readonly schema?: JsonSchema };
  /**
   * `producer`: an input; `operator`: a command; both need a bearer token once tokens are configured.
   * `read`: a read, which needs a token (viewer, producer or operator) once viewer tokens are configured.
   */
  readonly token?: 'producer' | 'operator' | 'read';
  readonly errors?: readonly number[];
}

const anyObject = { type: 'object' } as const;

/** What each route does, keyed "METHOD /path" as fastify registers it. */
export const OPERATIONS: Record<string, Operation> = {
  'GET /healthz': { summary: 'Alive (the process answers)', tags: ['probes'] },
  'GET /readyz': {
    summary: 'Ready: started and, in NATS mode, connected (503 otherwise)',
    tags: ['probes'],
    errors: [503],
  },
  'GET /metrics': {
    summary: 'Prometheus metrics (text format)',
    tags: ['probes'],
    response: { description: 'text/plain; version=0.0.4' },
  },
  'GET /openapi.json': { summary: 'This document', tags: ['probes'] },
  'GET /v1/models': {
    summary: 'Every model: state, production version, pending approval',
    tags: ['reads'],
    token: 'read',
    response: {
      description: 'OK',
      schema: { type: 'object', properties: { models: { type: 'array', items: ref('ModelStatus') } } },
    },
  },
  'GET /v1/models/:model_id': {
    summary: 'One model in detail, with its training config',
    tags: ['reads'],
    token: 'read',
    response: {
      description: 'OK',
      schema: {
        type: 'object',
        properties: { model: ref('ModelStatus'), training: ref('TrainingStatus') },
      },
    },
    params: ModelParamsSchema,
    errors: [400, 404],
  },
  'GET /v1/training': {
    summary: 'Every training config Warden has acted on',
    tags: ['reads'],
    token: 'read',
  },
  'GET /v1/training/:config_key': {
    summary: '"May I train?": may_train, and known: false for a config key Warden has never seen',
    tags: ['reads'],
    token: 'read',
    response: { description: 'OK', schema: ref('TrainingStatus') },
    params: ConfigParamsSchema,
    errors: [400],
  },
  'GET /v1/rollbacks': {
    summary: 'Rollbacks, newest first',
    tags: ['reads'],
    token: 'read',
    query: HistoryQuerySchema,
    errors: [400],
  },
  'GET /ui': {
    summary: 'The operator dashboard (HTML; 503 while it is not built)',
    tags: ['dashboard'],
    response: { description: 'text/html' },
    errors: [503],
  },
  'GET /ui/': {
    summary: 'The operator dashboard (HTML; 503 while it is not built)',
    tags: ['dashboard'],
    response: { description: 'text/html' },
    errors: [503],
  },
  'GET /ui/assets/*': {
    summary: "The dashboard's built files (content-hashed names)",
    tags: ['dashboard'],
    params: z.object({ asset: z.string().regex(/^[\w.-]+$/) }),
    response: { description: 'application/octet-stream' },
    errors: [404],
  },
  'GET /ui/api/session': {
    summary: 'Who the token is, its role, and whether it may act',
    tags: ['dashboard'],
    token: 'read',
    errors: [401, 403],
  },
  'GET /ui/api/machines': {
    summary: 'The two state machines as graphs',
    tags: ['dashboard'],
    token: 'read',
    errors: [401, 403],
  },
  'GET /ui/api/models/:model_id/timeline': {
    summary: "A model's timeline: its transitions, its training config's, and its rollbacks",
    tags: ['dashboard'],
    params: ModelParamsSchema,
    token: 'read',
    errors: [400, 401, 403, 404],
  },
  'GET /ui/api/live': {
    summary: 'The live stream of changes (server-sent events)',
    tags: ['dashboard'],
    token: 'read',
    response: { description: 'text/event-stream' },
    errors: [401, 403],
  },
  'POST /v1/evaluations': {
    summary: "An evaluation of a model's production version",
    tags: ['inputs'],
    body: { ref: 'EvaluationInput', required: true },
    token: 'producer',
    errors: [400, 401, 403, 404, 503],
  },
  'POST /v1/promotions': {
    summary: 'A new production version',
    tags: ['inputs'],
    body: { ref: 'PromotionInput', required: true },
    token: 'producer',
    errors: [400, 401, 403, 503],
  },
  'POST /v1/models/:model_id/approve': {
    summary: 'Approve the pending rollback',
    tags: ['commands'],
    params: ModelParamsSchema,
    body: { ref: 'ApproveCommand', required: false },
    token: 'operator',
    errors: [400, 401, 403, 404, 409],
  },
  'POST /v1/models/:model_id/reject': {
    summary: 'Reject the pending rollback',
    tags: ['commands'],
    params: ModelParamsSchema,
    body: { ref: 'RejectCommand', required: false },
    token: 'operator',
    errors: [400, 401, 403, 404, 409],
  },
  'POST /v1/models/:model_id/rollback': {
    summary: 'Roll back by hand to the last known-good version (or to_version)',
    tags: ['commands'],
    params: ModelParamsSchema,
    body: { ref: 'RollbackCommand', required: true },
    token: 'operator',
    errors: [400, 401, 403, 404, 409],
  },
  'POST /v1/training/:config_key/pause': {
    summary: 'Pause a training config',
    tags: ['commands'],
    params: ConfigParamsSchema,
    body: { ref: 'PauseCommand', required: true },
    token: 'operator',
    errors: [400, 401, 403],
  },
  'POST /v1/training/:config_key/resume': {
    summary: 'Resume a paused training config',
    tags: ['commands'],
    params: ConfigParamsSchema,
    body: { ref: 'ResumeCommand', required: false },
    token: 'operator',
    errors: [400, 401, 403, 409],
  },
  'POST /v1/replays': {
    summary:
      'Start a replay job: a candidate configuration beside the live one over the recorded history (or posted JSON Lines); one at a time',
    tags: ['policy lab'],
    body: { ref: 'ReplayJobRequest', required: true },
    token: 'operator',
    errors: [400, 401, 403, 409],
  },
  'GET /v1/replays': {
    summary: 'The replay jobs kept (the newest 20), without their reports',
    tags: ['policy lab'],
    token: 'read',
  },
  'GET /v1/replays/:job_id': {
    summary: "A replay job's status, and its report once done (as `warden replay --json` prints it)",
    tags: ['policy lab'],
    token: 'read',
    params: ReplayParamsSchema,
    errors: [400, 404],
  },
};

const COMPONENT_NAMES: Record<string, string> = {
  'evaluation-input': 'EvaluationInput',
  'promotion-input': 'PromotionInput',
  metadata: 'InputMetadata',
  'approve-command': 'ApproveCommand',
  'reject-command': 'RejectCommand',
  'rollback-command': 'RollbackCommand',
  'pause-command': 'PauseCommand',
  'resume-command': 'ResumeCommand',
  error: 'Error',
  'training-status': 'TrainingStatus',
  'model-status': 'ModelStatus',
  'replay-job-request': 'ReplayJobRequest',
};

/** `rollback_failed` -> `RollbackFailed` (the events' component names). */
const pascal = (name: string): string =>
  name.replace(/(^|-)([a-z])/g, (_match, _dash: string, letter: string) => letter.toUpperCase());

function parameters(op: Operation): JsonSchema[] {
  const result: JsonSchema[] = [];
  const add = (where: 'path' | 'query', schema: z.ZodType) => {
    const json = requestSchema(schema) as { properties?: Record<string, JsonSchema>; required?: string[] };
    for (const [name, property] of Object.entries(json.properties ?? {})) {
      result.push({
        name,
        in: where,
        required: where === 'path' || (json.required ?? []).includes(name),
        schema: property,
      });
    }
  };
  if (op.params) add('path', op.params);
  if (op.query) add('query', op.query);
  return result;
}

function operation(key: string, op: Operation): JsonSchema {
  const responses: Record<string, JsonSchema> = {
    '200': {
      description: op.response?.description ?? 'OK',
      ...(op.response?.description?.includes('/')
        ? { content: { [op.response.description.split(/[;\s]/)[0]!]: { schema: { type: 'string' } } } }
        : { content: { 'application/json': { schema: op.response?.schema ?? anyObject } } }),
    },
  };
  for (const status of op.errors ?? []) {
    responses[String(status)] = {
      description: `error (${Object.entries(STATUS_BY_CODE)
        .filter(([, s]) => s === status)
        .map(([code]) => code)
        .join(', ')})`,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
  return {
    operationId: key
      .replace(/[^A-Za-z0-9]+/g, '_')
      .replace(/^_|_$/g, '')
      .toLowerCase(),
    summary: op.summary,
    tags: op.tags,
    ...(parameters(op).length > 0 ? { parameters: parameters(op) } : {}),
    ...(op.body
      ? {
          requestBody: {
            required: op.body.required,
            content: { 'application/json': { schema: { $ref: `#/components/schemas/${op.body.ref}` } } },
          },
        }
      : {}),
    ...(op.token
      ? {
          security: op.token === 'read' ? [{}, { bearer: [] }] : [{ bearer: [] }],
          description: {
            operator:
              'Needs an operator token once tokens are configured; without tokens, only loopback callers.',
            producer:
              'Needs a producer (or operator) token once tokens are configured; without tokens, only loopback callers.',
            read: 'Open, or a token (viewer, producer or operator) once viewer tokens are configured.',
          }[op.token],
        }
      : {}),
    responses,
  };
}

/**
 * The document for the routes actually registered (`routes`: "METHOD /path" as fastify has them). A route
 * without an entry in OPERATIONS is listed as `x-undocumented`, so that a test can tell which are missing.
 */
export function openApiDocument(routes: readonly string[]): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of [...routes].sort()) {
    const [method, url] = route.split(' ') as [string, string];
    // fastify's `:name` and a trailing `*` (the asset routes) are OpenAPI path parameters.
    const path = url.replace(/:([A-Za-z_]+)/g, '{$1}').replace(/\*$/, '{asset}');
    const op = OPERATIONS[route];
    (paths[path] ??= {})[method.toLowerCase()] = op
      ? operation(route, op)
      : { summary: route, 'x-undocumented': true, responses: { default: { description: 'undocumented' } } };
  }
  const components: Record<string, JsonSchema> = {};
  for (const [name, schema] of Object.entries(wireSchemas()))
    components[COMPONENT_NAMES[name] ?? `${pascal(name)}Event`] = schema;
  return {
    openapi: '3.1.0',
    info: {
      title: 'Warden HTTP API',
      version: wardenVersion(),
      description:
        'Guards continuously trained models. Every error is {"error": {"code", "message", "issues"?}}. Output events are published on the bus (NATS subjects warden.evt.<kind>.<key>); their schemas are listed under components.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: {
      schemas: components,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    },
  };
}

/** Collects the routes as fastify registers them; call before the routes are added. */
export function collectRoutes(app: FastifyInstance): string[] {
  const routes: string[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) if (method !== 'HEAD') routes.push(`${method} ${route.url}`);
  });
  return routes;
}

/** GET /openapi.json: the document for every route registered on `app` (built once, on first request). */
export function registerOpenApi(app: FastifyInstance, routes: string[]): void {
  let document: JsonSchema | null = null;
  app.get('/openapi.json', async () => (document ??= openApiDocument(routes)));
}
