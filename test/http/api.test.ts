import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { OPERATOR_TOKEN, PRODUCER_TOKEN, promoteTwo, startTestService, type TestService } from './support.ts';

const operatorId = `operator:${createHash('sha256').update(OPERATOR_TOKEN).digest('hex').slice(0, 6)}`;
const producerId = `producer:${createHash('sha256').update(PRODUCER_TOKEN).digest('hex').slice(0, 6)}`;

/** A severe regression (Elo 1520 -> 1460) that waits for an operator (requireForSevere). */
async function severeRegression(t: TestService, modelId = 'hex8_2p'): Promise<void> {
  const reply = await t.api(
    'POST',
    '/v1/evaluations',
    { model_id: modelId, current_elo: 1460, games_played: 100 },
    PRODUCER_TOKEN,
  );
  expect(reply.status).toBe(200);
  expect(reply.body.state).toBe('awaitingApproval');
}

let running: TestService[] = [];
async function start(...args: Parameters<typeof startTestService>): Promise<TestService> {
  const t = await startTestService(...args);
  running.push(t);
  return t;
}
afterEach(async () => {
  await Promise.all(running.map((t) => t.close()));
  running = [];
});

describe('http: probes', () => {
  it('answers /healthz and /readyz, and serves Prometheus text on /metrics', async () => {
    const t = await start();
    expect(await t.api('GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await t.api('GET', '/readyz')).toMatchObject({ status: 200, body: { status: 'ready' } });
    const metrics = await t.api('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(metrics.text).toContain('# TYPE warden_evaluations_total counter');
  });

  it('answers an unknown path with a not_found error naming it', async () => {
    const t = await start();
    const reply = await t.api('GET', '/v2/nothing?x=1');
    expect(reply.status).toBe(404);
    expect(reply.body.error).toEqual({
      code: 'not_found',
      message: expect.stringContaining('GET /v2/nothing;'),
    });
  });
});

describe('http: inputs (producers)', () => {
  it('takes promotions and evaluations with the NATS payloads and returns the outcome', async () => {
    const t = await start();
    const promoted = await t.api(
      'POST',
      '/v1/promotions',
      { model_id: 'hex8_2p_v1', elo: 1500 },
      PRODUCER_TOKEN,
    );
    expect(promoted).toMatchObject({
      status: 200,
      body: {
        model_id: 'hex8_2p',
        version: 'v1',
        outcome: { kind: 'promoted', version: 'v1' },
        state: 'healthy',
      },
    });
    const evaluated = await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'hex8_2p', current_elo: 1495, games_played: 100 },
      PRODUCER_TOKEN,
    );
    expect(evaluated).toMatchObject({
      status: 200,
      body: { model_id: 'hex8_2p', outcome: { kind: 'healthy' }, state: 'healthy' },
    });
  });

  it('operators may publish inputs too (documented: they can roll back by hand anyway)', async () => {
    const t = await start();
    const reply = await t.api(
      'POST',
      '/v1/promotions',
      { model_id: 'm1', version: 'v1', elo: 1500 },
      OPERATOR_TOKEN,
    );
    expect(reply.status).toBe(200);
  });

  it('refuses invalid input with 400, the issues, and what was expected', async () => {
    const t = await start();
    await promoteTwo(t);
    const reply = await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'hex8_2p', current_elo: 'high', games_played: -3 },
      PRODUCER_TOKEN,
    );
    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe('invalid_input');
    expect(reply.body.error.issues).toEqual([
      expect.stringMatching(/^current_elo: .*expected number, received string/),
      expect.stringMatching(/^games_played: .*expected number to be >=0, received -3/),
    ]);
  });

  it('maps an evaluation of an unknown model to 404, bad JSON to 400 and a non-JSON body to 415', async () => {
    const t = await start();
    const unknown = await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'ghost', current_elo: 1, games_played: 60 },
      PRODUCER_TOKEN,
    );
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({
      code: 'unknown_model',
      message: expect.stringContaining('publish a promotion first'),
    });
    const badJson = await t.api('POST', '/v1/evaluations', '{"model_id": ', PRODUCER_TOKEN);
    expect(badJson.status).toBe(400);
    expect(badJson.body.error).toMatchObject({
      code: 'invalid_input',
      message: expect.stringContaining('expected a JSON body'),
    });
    const response = await fetch(`${t.url}/v1/evaluations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PRODUCER_TOKEN}`, 'content-type': 'application/xml' },
      body: '<evaluation/>',
    });
    expect(response.status).toBe(415);
    expect(((await response.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'invalid_input',
      message: expect.stringContaining('expected Content-Type: application/json'),
    });
  });
});

describe('http: reads', () => {
  it('lists models and training configs, one model with its config, and the rollback history', async () => {
    const t = await start();
    expect((await t.api('GET', '/v1/models')).body).toEqual({ models: [] });
    await promoteTwo(t);
    const models = await t.api('GET', '/v1/models');
    expect(models.body.models).toHaveLength(1);
    expect(models.body.models[0]).toMatchObject({
      model_id: 'hex8_2p',
      state: 'healthy',
      production_version: 'v2',
    });

    const one = await t.api('GET', '/v1/models/hex8_2p');
    expect(one.status).toBe(200);
    expect(one.body.model).toMatchObject({
      model_id: 'hex8_2p',
      versions: [{ version: 'v1' }, { version: 'v2' }],
    });
    expect(one.body.training).toMatchObject({ config_key: 'hex8_2p', status: 'running', may_train: true });

    const critical = await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'hex8_2p', current_elo: 1400, games_played: 100 },
      PRODUCER_TOKEN,
    );
    expect(critical.body.state).toBe('rollingBack');
    await t.service.warden.idle();

    expect((await t.api('GET', '/v1/training')).body.training).toEqual([
      expect.objectContaining({ config_key: 'hex8_2p', status: 'paused', may_train: false, by: 'warden' }),
    ]);
    const history = await t.api('GET', '/v1/rollbacks?model_id=hex8_2p&limit=5');
    expect(history.body.rollbacks).toEqual([
      expect.objectContaining({
        outcome: 'rolled_back',
        from_version: 'v2',
        to_version: 'v1',
        triggered_by: 'auto_regression_critical',
      }),
    ]);
    expect((await t.api('GET', '/v1/rollbacks?model_id=other')).body).toEqual({ rollbacks: [] });
  });

  it('tells a trainer whether it may train, for configs Warden never saw too', async () => {
    const t = await start();
    expect((await t.api('GET', '/v1/training/never_seen')).body).toMatchObject({
      config_key: 'never_seen',
      status: 'running',
      may_train: true,
    });
    await t.api('POST', '/v1/training/cfg_a/pause', { reason: 'maintenance' }, OPERATOR_TOKEN);
    expect((await t.api('GET', '/v1/training/cfg_a')).body).toMatchObject({
      status: 'paused',
      may_train: false,
      reason: 'maintenance',
    });
  });

  it('validates path and query: bad ids and limits are 400, unknown models 404', async () => {
    const t = await start();
    const badId = await t.api('GET', '/v1/models/a.b');
    expect(badId.status).toBe(400);
    expect(badId.body.error.issues).toEqual([expect.stringContaining('model_id: expected a single token')]);
    expect((await t.api('GET', '/v1/models/ghost')).body.error.code).toBe('unknown_model');
    expect((await t.api('GET', '/v1/models/ghost')).status).toBe(404);
    const badLimit = await t.api('GET', '/v1/rollbacks?limit=0');
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.error.message).toContain('limit: expected an integer from 1 to 1000');
    expect((await t.api('GET', '/v1/rollbacks?colour=red')).status).toBe(400);
    expect((await t.api('GET', '/v1/training/a%20b')).status).toBe(400);
  });
});

describe('http: operator commands', () => {
  it('approves a pending rollback and records the caller: the name given, with the token identity', async () => {
    const t = await start({ approval: { requireForSevere: true } });
    await promoteTwo(t);
    await severeRegression(t);
    const approved = await t.api(
      'POST',
      '/v1/models/hex8_2p/approve',
      { by: 'alice', note: 'looks real' },
      OPERATOR_TOKEN,
    );
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({
      model_id: 'hex8_2p',
      by: `alice (${operatorId})`,
      outcome: { kind: 'rollback_started', toVersion: 'v1' },
      state: 'rollingBack',
    });
    await t.service.warden.idle();
    const history = await t.api('GET', '/v1/rollbacks');
    expect(history.body.rollbacks[0]).toMatchObject({
      triggered_by: 'auto_regression_approved',
      by: `alice (${operatorId})`,
    });

    const again = await t.api('POST', '/v1/models/hex8_2p/approve', {}, OPERATOR_TOKEN);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({
      code: 'no_pending_approval',
      message: expect.stringContaining('has no pending approval'),
    });
    // The token itself is never logged.
    expect(t.log.text()).not.toContain(OPERATOR_TOKEN);
    expect(t.log.lines()).toContainEqual(
      expect.objectContaining({ command: 'approve', by: `alice (${operatorId})` }),
    );
  });

  it('rejects a pending rollback; without `by` the token identity alone is recorded', async () => {
    const t = await start({ approval: { requireForSevere: true } });
    await promoteTwo(t);
    await severeRegression(t);
    const rejected = await t.api('POST', '/v1/models/hex8_2p/reject', undefined, OPERATOR_TOKEN);
    expect(rejected.status).toBe(200);
    expect(rejected.body).toMatchObject({ by: operatorId, outcome: { kind: 'rejected' } });
    expect((await t.api('GET', '/v1/models/hex8_2p')).body.model.production_version).toBe('v2');
    expect((await t.api('POST', '/v1/models/hex8_2p/reject', {}, OPERATOR_TOKEN)).status).toBe(409);
  });

  it('rolls back by hand to a chosen version; unknown versions are 404, impossible rollbacks 409', async () => {
    const t = await start();
    await promoteTwo(t);
    const unknownVersion = await t.api(
      'POST',
      '/v1/models/hex8_2p/rollback',
      { reason: 'test', to_version: 'v9' },
      OPERATOR_TOKEN,
    );
    expect(unknownVersion.status).toBe(404);
    expect(unknownVersion.body.error.code).toBe('unknown_version');
    const missingReason = await t.api(
      'POST',
      '/v1/models/hex8_2p/rollback',
      { to_version: 'v1' },
      OPERATOR_TOKEN,
    );
    expect(missingReason.status).toBe(400);
    expect(missingReason.body.error.issues).toEqual([expect.stringContaining('reason:')]);

    const rolled = await t.api(
      'POST',
      '/v1/models/hex8_2p/rollback',
      { by: 'bob', reason: 'bad games', to_version: 'v1' },
      OPERATOR_TOKEN,
    );
    expect(rolled.status).toBe(200);
    expect(rolled.body.outcome).toMatchObject({ kind: 'rollback_started', toVersion: 'v1' });
    await t.service.warden.idle();
    expect((await t.api('GET', '/v1/rollbacks')).body.rollbacks[0]).toMatchObject({
      triggered_by: 'manual',
      by: `bob (${operatorId})`,
    });
    expect((await t.api('GET', '/v1/training/hex8_2p')).body.may_train).toBe(false);

    const nothingLeft = await t.api(
      'POST',
      '/v1/models/hex8_2p/rollback',
      { reason: 'again' },
      OPERATOR_TOKEN,
    );
    expect(nothingLeft.status).toBe(409);
    expect(nothingLeft.body.error.code).toBe('conflict');
    expect((await t.api('POST', '/v1/models/ghost/rollback', { reason: 'x' }, OPERATOR_TOKEN)).status).toBe(
      404,
    );
  });

  it('pauses and resumes a training config; resuming a running one is a conflict', async () => {
    const t = await start();
    const paused = await t.api(
      'POST',
      '/v1/training/cfg_a/pause',
      { by: 'carol', reason: 'cluster upgrade' },
      OPERATOR_TOKEN,
    );
    expect(paused).toMatchObject({
      status: 200,
      body: {
        config_key: 'cfg_a',
        by: `carol (${operatorId})`,
        outcome: { kind: 'paused' },
        state: 'paused',
      },
    });
    const resumed = await t.api('POST', '/v1/training/cfg_a/resume', { note: 'done' }, OPERATOR_TOKEN);
    expect(resumed).toMatchObject({ status: 200, body: { outcome: { kind: 'resumed' }, state: 'running' } });
    const again = await t.api('POST', '/v1/training/cfg_a/resume', {}, OPERATOR_TOKEN);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('conflict');
    const noReason = await t.api('POST', '/v1/training/cfg_a/pause', {}, OPERATOR_TOKEN);
    expect(noReason.status).toBe(400);
    const unknownField = await t.api(
      'POST',
      '/v1/training/cfg_a/pause',
      { reason: 'x', colour: 'red' },
      OPERATOR_TOKEN,
    );
    expect(unknownField.body.error.issues).toEqual([expect.stringContaining('colour')]);
  });
});

describe('http: authentication', () => {
  it('refuses mutating requests without a token, with a wrong token, and producers on operator routes', async () => {
    const t = await start({ approval: { requireForSevere: true } });
    await promoteTwo(t);
    const none = await t.api('POST', '/v1/training/cfg_a/pause', { reason: 'x' });
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({
      code: 'unauthorized',
      message: expect.stringContaining('Authorization: Bearer'),
    });
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await t.api(
      'POST',
      '/v1/training/cfg_a/pause',
      { reason: 'x' },
      'not-a-configured-token-000',
    );
    expect(wrong.status).toBe(401);
    const producer = await t.api('POST', '/v1/models/hex8_2p/rollback', { reason: 'x' }, PRODUCER_TOKEN);
    expect(producer.status).toBe(403);
    expect(producer.body.error).toMatchObject({
      code: 'forbidden',
      message: expect.stringContaining('expected an operator token'),
    });
    const input = await t.api('POST', '/v1/evaluations', {
      model_id: 'hex8_2p',
      current_elo: 1500,
      games_played: 60,
    });
    expect(input.status).toBe(401);
    // Nothing of it happened.
    expect((await t.api('GET', '/v1/training/cfg_a')).body.may_train).toBe(true);
    expect((await t.api('GET', '/v1/rollbacks')).body.rollbacks).toEqual([]);
    // Reads need no token.
    expect((await t.api('GET', '/v1/models')).status).toBe(200);
    expect(t.log.text()).not.toContain('not-a-configured-token-000');
  });

  it('records a producer by its identity in the log', async () => {
    const t = await start();
    await promoteTwo(t);
    await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'hex8_2p', current_elo: 1520, games_played: 10 },
      PRODUCER_TOKEN,
    );
    expect(t.log.lines()).toContainEqual(
      expect.objectContaining({ component: 'http', from: producerId, kind: 'evaluation' }),
    );
  });

  it('with no tokens on loopback: open to local callers, recorded as local, and the start-up log says so', async () => {
    const t = await start({ http: { operatorTokens: [], producerTokens: [] } });
    const paused = await t.api('POST', '/v1/training/cfg_a/pause', { by: 'dave', reason: 'x' });
    expect(paused.status).toBe(200);
    expect(paused.body.by).toBe('dave (local)');
    expect(t.service.endpoints.join('\n')).toContain(
      'no tokens configured: mutating routes are open to local callers only',
    );
  });

  it('with no tokens and a non-loopback host: every mutating route is refused, and the start-up log says so', async () => {
    const t = await start({ http: { host: '0.0.0.0', operatorTokens: [], producerTokens: [] } });
    const reply = await fetch(`http://127.0.0.1:${new URL(t.url).port}/v1/training/cfg_a/pause`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ by: 'eve', reason: 'x' }),
    });
    expect(reply.status).toBe(403);
    expect(((await reply.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    const startup = t.log.lines().find((line) => line.component === 'http' && line.auth === 'closed');
    expect(startup?.msg).toContain('every mutating route is refused');
  });
});
