/**
 * Regression tests for issue 8 at the HTTP edge: one reading of model references (finding 4), every id
 * the contract allows on every route (finding 5), every refused input counted under bounded labels
 * (finding 6), and errors that say what was expected and show no internals (finding 8).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WardenError } from '../../src/domain/errors.ts';
import {
  OPERATOR_TOKEN,
  PRODUCER_TOKEN,
  parseMetrics,
  startTestService,
  type TestService,
} from './support.ts';

let running: TestService[] = [];
async function start(...args: Parameters<typeof startTestService>): Promise<TestService> {
  const t = await startTestService(...args);
  running.push(t);
  return t;
}
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(running.map((t) => t.close()));
  running = [];
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON from the wire, asserted field by field
type Json = any;

/** A request with any body and any headers, read back as text and (when it is) JSON. */
async function raw(
  t: TestService,
  path: string,
  init: { method?: string; body?: string | Uint8Array; headers?: Record<string, string> },
): Promise<{ status: number; body: Json; text: string }> {
  const response = await fetch(`${t.url}${path}`, {
    method: init.method ?? 'POST',
    headers: init.headers ?? {},
    body: init.body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, body, text };
}

async function rejectedCounts(t: TestService): Promise<Map<string, number>> {
  const samples = parseMetrics((await t.api('GET', '/metrics')).text);
  return new Map([...samples].filter(([name]) => name.startsWith('warden_rejected_inputs_total')));
}

describe('http: one reading of model references (issue 8, finding 4)', () => {
  it('"resnet_v2" promoted with version v7 is model resnet_v2 for evaluations and paths', async () => {
    const t = await start();
    for (const version of ['v6', 'v7']) {
      const promoted = await t.api(
        'POST',
        '/v1/promotions',
        { model_id: 'resnet_v2', version, elo: 1500 },
        PRODUCER_TOKEN,
      );
      expect(promoted.body).toMatchObject({ model_id: 'resnet_v2', version });
    }
    const evaluated = await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'resnet_v2', current_elo: 1498, games_played: 100 },
      PRODUCER_TOKEN,
    );
    expect(evaluated).toMatchObject({ status: 200, body: { model_id: 'resnet_v2', state: 'healthy' } });
    expect((await t.api('GET', '/v1/models/resnet_v2')).body.model).toMatchObject({
      model_id: 'resnet_v2',
      production_version: 'v7',
    });
    const paused = await t.api('POST', '/v1/models/resnet_v2/rollback', { reason: 'test' }, OPERATOR_TOKEN);
    expect(paused).toMatchObject({ status: 200, body: { model_id: 'resnet_v2' } });
  });
});

describe('http: every id the contract allows reaches every route (issue 8, finding 5)', () => {
  it('a 128-character model id and config key work on every route with an id in the path', async () => {
    const t = await start({ approval: { requireForSevere: true } });
    const id = `m${'x'.repeat(126)}z`;
    expect(id).toHaveLength(128);
    for (const [version, elo] of [
      ['v1', 1500],
      ['v2', 1520],
    ] as const) {
      const reply = await t.api('POST', '/v1/promotions', { model_id: id, version, elo }, PRODUCER_TOKEN);
      expect(reply.status).toBe(200);
    }
    const model = await t.api('GET', `/v1/models/${id}`);
    expect(model).toMatchObject({ status: 200, body: { model: { model_id: id } } });
    expect((await t.api('GET', `/v1/training/${id}`)).body).toMatchObject({
      config_key: id,
      may_train: true,
    });
    // No pending approval yet: the route is reached and answers a conflict, not fastify's 414.
    const noApproval = await t.api('POST', `/v1/models/${id}/approve`, {}, OPERATOR_TOKEN);
    expect(noApproval.body.error.code).toBe('no_pending_approval');
    const noRejection = await t.api('POST', `/v1/models/${id}/reject`, {}, OPERATOR_TOKEN);
    expect(noRejection.body.error.code).toBe('no_pending_approval');
    await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: id, current_elo: 1460, games_played: 100 },
      PRODUCER_TOKEN,
    );
    expect((await t.api('POST', `/v1/models/${id}/reject`, {}, OPERATOR_TOKEN)).status).toBe(200);
    await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: id, current_elo: 1460, games_played: 100 },
      PRODUCER_TOKEN,
    );
    expect((await t.api('POST', `/v1/models/${id}/approve`, {}, OPERATOR_TOKEN)).status).toBe(200);
    await t.service.warden.idle();
    const rolledBack = await t.api('POST', `/v1/models/${id}/rollback`, { reason: 'x' }, OPERATOR_TOKEN);
    expect([200, 409]).toContain(rolledBack.status);
    expect(rolledBack.body.error?.code ?? 'ok').not.toBe('invalid_input');
    expect((await t.api('POST', `/v1/training/${id}/resume`, {}, OPERATOR_TOKEN)).status).toBe(200);
    expect((await t.api('POST', `/v1/training/${id}/pause`, { reason: 'x' }, OPERATOR_TOKEN)).status).toBe(
      200,
    );
    expect((await t.api('GET', `/v1/rollbacks?model_id=${id}`)).body.rollbacks.length).toBeGreaterThan(0);
    // The dashboard's route with an id in its path too.
    const timeline = await t.api('GET', `/ui/api/models/${id}/timeline`);
    expect(timeline).toMatchObject({ status: 200, body: { model_id: id } });
  });

  it('an id one character too long gets our 400 saying 1 to 128; an absurd one a 414 saying the limit', async () => {
    const t = await start();
    const tooLong = await t.api('GET', `/v1/models/${'x'.repeat(129)}`);
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.issues).toEqual([expect.stringContaining('(1 to 128)')]);
    const absurd = await t.api('GET', `/v1/training/${'x'.repeat(5000)}`);
    expect(absurd.status).toBe(414);
    expect(absurd.body.error).toEqual({
      code: 'invalid_input',
      message: expect.stringContaining('at most 1024 characters (ids are 1 to 128)'),
    });
  });
});

describe('http: every refused input is counted under bounded labels (issue 8, finding 6)', () => {
  it('not JSON, wrong content type, too large, schema-invalid and unauthenticated inputs are all counted', async () => {
    const t = await start();
    const auth = { authorization: `Bearer ${PRODUCER_TOKEN}` };
    const json = { ...auth, 'content-type': 'application/json' };
    const replies = [
      await raw(t, '/v1/evaluations', { headers: json, body: '{"model_id": ' }),
      await raw(t, '/v1/evaluations', { headers: { ...auth, 'content-type': 'text/plain' }, body: '{}' }),
      await raw(t, '/v1/promotions', {
        headers: { ...auth, 'content-type': 'application/xml' },
        body: '<a/>',
      }),
      await raw(t, '/v1/promotions', {
        headers: json,
        body: JSON.stringify({ pad: 'x'.repeat(1024 * 1024) }),
      }),
      await raw(t, '/v1/evaluations', { headers: json, body: '{"model_id": 3}' }),
      await raw(t, '/v1/promotions', { headers: { 'content-type': 'application/json' }, body: '{}' }),
    ];
    expect(replies.map((r) => r.status)).toEqual([400, 415, 415, 413, 400, 401]);
    const counts = await rejectedCounts(t);
    expect(Object.fromEntries(counts)).toEqual({
      'warden_rejected_inputs_total{kind="evaluation",reason="invalid_input"}': 3,
      'warden_rejected_inputs_total{kind="promotion",reason="invalid_input"}': 2,
      'warden_rejected_inputs_total{kind="promotion",reason="unauthorized"}': 1,
    });
  });
});

describe('http: errors say what was expected; 500s show no internals (issue 8, finding 8)', () => {
  it('JSON sent as text/plain is a 415 naming the expected and the received content type', async () => {
    const t = await start();
    const reply = await raw(t, '/v1/evaluations', {
      headers: { authorization: `Bearer ${PRODUCER_TOKEN}`, 'content-type': 'text/plain' },
      body: JSON.stringify({ model_id: 'hex8_2p', current_elo: 1500, games_played: 100 }),
    });
    expect(reply.status).toBe(415);
    expect(reply.body.error).toEqual({
      code: 'invalid_input',
      message: 'expected Content-Type: application/json, received "text/plain"',
    });
  });

  it('a missing field or an empty body says "required" and "received nothing", not JavaScript\'s undefined', async () => {
    const t = await start();
    const empty = await raw(t, '/v1/evaluations', {
      headers: { authorization: `Bearer ${PRODUCER_TOKEN}`, 'content-type': 'application/json' },
      body: '',
    });
    expect(empty.status).toBe(400);
    expect(empty.body.error.issues).toEqual(['(root): required: expected object, received nothing']);
    const missing = await t.api('POST', '/v1/evaluations', { model_id: 'hex8_2p' }, PRODUCER_TOKEN);
    expect(missing.body.error.issues).toEqual(['games_played: required: expected number, received nothing']);
    expect(missing.text).not.toContain('undefined');
  });

  it('the 413 says the limit', async () => {
    const t = await start();
    const body = JSON.stringify({ pad: 'x'.repeat(1024 * 1024) });
    const reply = await raw(t, '/v1/evaluations', {
      headers: { authorization: `Bearer ${PRODUCER_TOKEN}`, 'content-type': 'application/json' },
      body,
    });
    expect(reply.status).toBe(413);
    expect(reply.body.error.message).toBe(
      `expected a body of at most 1 MiB (1048576 bytes), received ${Buffer.byteLength(body)} bytes`,
    );
  });

  it('a bad timestamp names the accepted forms', async () => {
    const t = await start();
    const reply = await t.api(
      'POST',
      '/v1/promotions',
      { model_id: 'hex8_2p', version: 'v1', timestamp: 'yesterday' },
      PRODUCER_TOKEN,
    );
    expect(reply.status).toBe(400);
    expect(reply.body.error.issues).toEqual([
      'timestamp: expected epoch seconds (a number > 0, fractions allowed: 1767225600.25) or an ISO 8601 date-time with an offset (2026-01-01T00:00:00Z), received "yesterday"',
    ]);
  });

  it('an internal failure is a 500 with a stable code and an error id; the details are in the log only', async () => {
    const t = await start();
    const cause = new Error('guard "isSevere" threw: no root in bracket [-1e9, 1e9]');
    vi.spyOn(t.service.warden, 'evaluate').mockRejectedValue(
      new WardenError('internal', 'processing the evaluation failed', { cause }),
    );
    const reply = await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'hex8_2p', current_elo: 1500, games_played: 100 },
      PRODUCER_TOKEN,
    );
    expect(reply.status).toBe(500);
    const errorId = reply.body.error.error_id as string;
    expect(errorId).toMatch(/^[0-9a-f-]{36}$/);
    expect(reply.body.error).toEqual({
      code: 'internal',
      message: `internal error ${errorId}: Warden could not process this request; the service log has the details under error_id ${errorId}`,
      error_id: errorId,
    });
    expect(reply.text).not.toMatch(/guard|bracket|isSevere/);
    // The log line with that id has the error and its cause.
    const logged = t.log.lines().find((line) => line.error_id === errorId);
    expect(JSON.stringify(logged)).toContain('processing the evaluation failed');
    expect(JSON.stringify(logged)).toContain('no root in bracket');
    // Not the producer's fault: not counted as a rejected input.
    expect((await rejectedCounts(t)).size).toBe(0);
  });

  it('the 500 reuses the error id the runtime already logged the failure under', async () => {
    const t = await start();
    const errorId = '0b7d8f52-5c1e-4a39-9d0e-2f4c6a8b1e37';
    vi.spyOn(t.service.warden, 'promote').mockRejectedValue(
      new WardenError('internal', `Warden could not process PROMOTED: internal error ${errorId}`, {
        cause: new Error('boom'),
        errorId,
      }),
    );
    const reply = await t.api('POST', '/v1/promotions', { model_id: 'm', version: 'v1' }, PRODUCER_TOKEN);
    expect(reply.status).toBe(500);
    expect(reply.body.error.error_id).toBe(errorId);
  });

  it('a thrown non-Warden error is a 500 the same way', async () => {
    const t = await start();
    vi.spyOn(t.service.warden, 'status').mockImplementation(() => {
      throw new TypeError("Cannot read properties of undefined (reading 'context')");
    });
    const reply = await t.api('GET', '/v1/models');
    expect(reply.status).toBe(500);
    expect(reply.body.error.code).toBe('internal');
    expect(reply.text).not.toContain('context');
  });
});
