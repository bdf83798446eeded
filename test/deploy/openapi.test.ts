import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvaluationInputSchema, PromotionInputSchema } from '../../src/domain/events.ts';
import { OPERATIONS, schemaFile, wireSchemas } from '../../src/http/openapi.ts';
import { OPERATOR_TOKEN, PRODUCER_TOKEN, startTestService, type TestService } from '../http/support.ts';

const SCHEMA_DIR = fileURLToPath(new URL('../../docs/schemas/', import.meta.url));
/* eslint-disable @typescript-eslint/no-explicit-any -- the document is JSON, read field by field */
let t: TestService;
let doc: any;

beforeAll(async () => {
  t = await startTestService();
  const reply = await t.api('GET', '/openapi.json');
  expect(reply.status).toBe(200);
  doc = reply.body;
});
afterAll(async () => {
  await t.close();
});

const operations = (): Array<[string, string, any]> =>
  Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => [method.toUpperCase(), path, op] as [string, string, any]),
  );

describe('/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document (and the validator does refuse a broken one)', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    const broken = structuredClone(doc);
    delete broken.info;
    broken.paths['/v1/models'].get.responses = 'none';
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it('documents every route the server has, and no route it does not have', async () => {
    const undocumented = operations().filter(([, , op]) => op['x-undocumented']);
    expect(undocumented.map(([m, p]) => `${m} ${p}`)).toEqual([]);
    const documented = operations().map(([m, p]) => `${m} ${p.replace(/\{([a-z_]+)\}/g, ':$1')}`);
    expect(documented.sort()).toEqual(
      Object.keys(OPERATIONS)
        .map((k) => k.replace(/\*$/, ':asset'))
        .sort(),
    );
    // Each one is really served: the server answers something other than "no route".
    for (const [method, path, op] of operations()) {
      const url = path
        .replace('{model_id}', 'hex8_2p')
        .replace('{config_key}', 'hex8_2p')
        .replace('{asset}', 'x.js');
      if (op.responses['200'].content['text/event-stream']) {
        // A stream does not end: its answer's status is enough.
        const stream = new AbortController();
        const response = await fetch(`${t.url}${url}`, { signal: stream.signal });
        expect(response.status, url).toBe(200);
        stream.abort();
        continue;
      }
      const reply = await t.api(method, url, method === 'POST' ? {} : undefined, OPERATOR_TOKEN);
      expect(reply.body?.error?.message ?? '', `${method} ${url}`).not.toMatch(/^no route/);
    }
  });

  it('describes bodies, parameters and tokens from the same schemas that validate requests', () => {
    const evaluations = doc.paths['/v1/evaluations'].post;
    expect(evaluations.requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/EvaluationInput',
    });
    expect(evaluations.security).toEqual([{ bearer: [] }]);
    const input = doc.components.schemas.EvaluationInput;
    expect(input.required).toEqual(['model_id', 'games_played']);
    expect(input.additionalProperties).toBe(false);
    expect(input.properties.metadata.maxProperties).toBe(16);
    expect(doc.paths['/v1/rollbacks'].get.parameters.map((p: any) => [p.name, p.in, p.required])).toEqual([
      ['model_id', 'query', false],
      ['limit', 'query', false],
    ]);
    expect(doc.components.schemas.AlertEvent.properties.kind.enum).toContain('approval_requested');
  });
});

describe('/openapi.json responses', () => {
  it('the reads answer what the document says (TrainingStatus exactly, ModelStatus in its fields)', async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    for (const [name, schema] of Object.entries(doc.components.schemas as Record<string, object>))
      ajv.addSchema(schema, `#/components/schemas/${name}`);
    const check = (schema: object, body: unknown) => {
      const validate = ajv.compile({ ...schema });
      expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
    };
    await t.api('POST', '/v1/promotions', { model_id: 'docs_m', version: 'v1', elo: 1500 }, PRODUCER_TOKEN);
    await t.api('POST', '/v1/training/docs_m/pause', { reason: 'checking the schema' }, OPERATOR_TOKEN);
    const schemaOf = (path: string) =>
      doc.paths[path].get.responses['200'].content['application/json'].schema;
    for (const [path, url] of [
      ['/v1/training/{config_key}', '/v1/training/docs_m'],
      ['/v1/training/{config_key}', '/v1/training/never_seen'],
      ['/v1/training', '/v1/training'],
      ['/v1/models', '/v1/models'],
      ['/v1/models/{model_id}', '/v1/models/docs_m'],
    ] as const) {
      const reply = await t.api('GET', url);
      expect(reply.status, url).toBe(200);
      check(schemaOf(path), reply.body);
    }
    // Strict where it matters: a field the trainer contract does not have is a failure.
    const strict = ajv.compile({ $ref: '#/components/schemas/TrainingStatus' });
    expect(strict({ ...(await t.api('GET', '/v1/training/docs_m')).body, surprise: 1 })).toBe(false);
  });
});

describe('docs/schemas', () => {
  it('are up to date with the zod schemas (npm run schemas writes them)', () => {
    const expected = Object.fromEntries(
      Object.entries(wireSchemas()).map(([name, schema]) => [
        `${name}.schema.json`,
        schemaFile(name, schema),
      ]),
    );
    const files = readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.schema.json'));
    expect(files.sort()).toEqual(Object.keys(expected).sort());
    for (const file of files)
      expect(
        JSON.parse(readFileSync(`${SCHEMA_DIR}${file}`, 'utf8')),
        `${file} is stale: npm run schemas`,
      ).toEqual(expected[file]);
  });

  it('accept what Warden accepts (JSON Schema 2020-12, with formats)', () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const file = (name: string) => JSON.parse(readFileSync(`${SCHEMA_DIR}${name}.schema.json`, 'utf8'));
    const evaluation = ajv.compile(file('evaluation-input'));
    const promotion = ajv.compile(file('promotion-input'));
    const name = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
    const arbitraryEvaluation = fc.record(
      {
        model_id: fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/),
        games_played: fc.integer({ min: 0, max: 1_000_000_000 }),
        current_elo: fc.double({ min: -100_000, max: 100_000, noNaN: true }),
        current_win_rate: fc.double({ min: 0, max: 1, noNaN: true }),
        timestamp: fc.oneof(fc.integer({ min: 1, max: 4_000_000_000 }), fc.constant('2026-01-01T00:00:00Z')),
        metadata: fc.dictionary(name, fc.string({ maxLength: 512 }), { maxKeys: 16 }),
      },
      { requiredKeys: ['model_id', 'games_played'] },
    );
    fc.assert(
      fc.property(arbitraryEvaluation, (input) => {
        expect(EvaluationInputSchema.safeParse(input).success).toBe(true);
        expect(evaluation(input), JSON.stringify(evaluation.errors)).toBe(true);
      }),
    );
    expect(promotion({ model_id: 'hex8_2p_v3', elo: 1500, metadata: { run_id: 'r1' } })).toBe(true);
    expect(PromotionInputSchema.safeParse({ model_id: 'hex8_2p_v3', elo: 1500 }).success).toBe(true);
    // And refuse what Warden refuses, where JSON Schema can say it.
    for (const bad of [
      { model_id: 'hex8_2p', games_played: -1 },
      { model_id: 'hex8_2p', games_played: 1, extra: true },
      { model_id: 'hex8_2p', games_played: 1, current_elo: 'NaN' },
      { model_id: 'hex8_2p', games_played: 1, metadata: { n: 1 } },
      { model_id: 'a b', games_played: 1 },
    ]) {
      expect(evaluation(bad), JSON.stringify(bad)).toBe(false);
      expect(EvaluationInputSchema.safeParse(bad).success).toBe(false);
    }
  });
});
