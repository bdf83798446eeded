import { afterEach, describe, expect, it } from 'vitest';
import { OPERATOR_TOKEN, PRODUCER_TOKEN, startTestService, type TestService } from './support.ts';
import { eventually } from '../harness/eventually.ts';
import { JOB_ISSUES_LISTED, MAX_POSTED_HISTORY_CHARS, REPLAY_BODY_LIMIT_BYTES } from '../../src/lab/jobs.ts';
import { LIVE, STRICTER, T0, evaluation, knownVersions, promotion, toJsonLines } from '../lab/support.ts';

let t: TestService | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

async function finished(service: TestService, jobId: string) {
  return eventually(async () => {
    const reply = await service.api('GET', `/v1/replays/${jobId}`);
    expect(reply.status).toBe(200);
    expect(reply.body.status).not.toBe('running');
    return reply.body;
  });
}

describe('HTTP: replay jobs', () => {
  it('replays the service’s own journal with a candidate and reports the difference', async () => {
    t = await startTestService(LIVE);
    const service = t;
    t.clock.advance(T0 * 1000 - t.clock.now());
    for (const line of knownVersions()) {
      const { kind, timestamp, ...payload } = line;
      service.clock.advance(Math.max((timestamp as number) * 1000 - service.clock.now(), 0));
      const reply = await service.api('POST', `/v1/${kind}s`, payload, PRODUCER_TOKEN);
      expect(reply.status).toBe(200);
      await service.service.warden.idle();
    }
    const started = await t.api('POST', '/v1/replays', { config: STRICTER }, OPERATOR_TOKEN);
    expect(started.status).toBe(200);
    expect(started.body).toMatchObject({ status: 'running', report: null });
    const job = await finished(t, started.body.job_id);
    expect(job).toMatchObject({ status: 'done', source: 'input journal', lines: 28, error: null });
    expect(job.report.totals).toMatchObject({ rollbacks_added: 2, rollbacks_removed: 1 });
    expect(job.report.verdict.failed).toBe(true);
    // The live service is untouched: it rolled back v2 and v4 only, and runs v3.
    const model = await t.api('GET', '/v1/models/hex8');
    expect(model.body.model.production_version).toBe('v3');
    const list = await t.api('GET', '/v1/replays');
    expect(list.body.jobs.map((j: { job_id: string }) => j.job_id)).toEqual([started.body.job_id]);
    expect(list.body.jobs[0].report).toBeUndefined();
  });

  it('takes a posted JSON Lines history, and reports its bad lines one by one', async () => {
    t = await startTestService(LIVE);
    const history = toJsonLines([
      promotion(T0, 'm', 'v1'),
      '{"kind": "evaluation"',
      evaluation(T0 + 60, 'ghost', 'v1', 1500),
      promotion(T0 + 120, 'm', 'v2'),
      evaluation(T0 + 180, 'm', 'v2', 1400),
    ]);
    const started = await t.api('POST', '/v1/replays', { config: STRICTER, history }, OPERATOR_TOKEN);
    expect(started.status).toBe(200);
    const job = await finished(t, started.body.job_id);
    expect(job.source).toBe('posted JSON Lines');
    expect(job.report.issues.map((i: { line: number }) => i.line)).toEqual([2, 3]);
    expect(job.report.issues[1].problem).toContain('received "ghost" (an unknown model)');
    expect(job.report.totals).toMatchObject({ rollbacks_added: 0, rollbacks_removed: 0 });
  });

  it('keeps the first problems of a job in its report, and counts them all', async () => {
    t = await startTestService(LIVE);
    const bad = Array.from({ length: JOB_ISSUES_LISTED + 500 }, (_, i) => `{"kind":"other","n":${i}}`);
    const history = toJsonLines([promotion(T0, 'm', 'v1'), ...bad]);
    const started = await t.api('POST', '/v1/replays', { config: STRICTER, history }, OPERATOR_TOKEN);
    const job = await finished(t, started.body.job_id);
    expect(job.report.history).toMatchObject({ inputs: bad.length + 1, skipped: bad.length, warnings: 0 });
    expect(job.report.issues).toHaveLength(JOB_ISSUES_LISTED);
    expect(job.report.issues[0]).toMatchObject({ line: 2, level: 'skipped' });
    expect(job.report.issues.at(-1)).toMatchObject({ line: JOB_ISSUES_LISTED + 1 });
  });

  it('takes a posted history of the largest size it accepts, and checks the caller before reading it', async () => {
    t = await startTestService(LIVE);
    const lines = [promotion(T0, 'm', 'v1')];
    for (let size = toJsonLines(lines).length, i = 1; ; i++) {
      const next = evaluation(T0 + 60 * i, 'm', 'v1', 1500);
      size += toJsonLines([next]).length + 1;
      if (size > MAX_POSTED_HISTORY_CHARS) break;
      lines.push(next);
    }
    const history = toJsonLines(lines);
    expect(history.length).toBeGreaterThan(MAX_POSTED_HISTORY_CHARS - 200);
    expect(JSON.stringify({ config: STRICTER, history }).length).toBeGreaterThan(1024 * 1024);
    const started = await t.api('POST', '/v1/replays', { config: STRICTER, history }, OPERATOR_TOKEN);
    expect(started.status).toBe(200);
    expect(await finished(t, started.body.job_id)).toMatchObject({ status: 'done', lines: lines.length });
    // Without a token the body is never read: refused as unauthorized, not as too large.
    const huge = 'x'.repeat(REPLAY_BODY_LIMIT_BYTES + 10);
    expect((await t.api('POST', '/v1/replays', { config: {}, history: huge })).status).toBe(401);
    const tooLarge = await t.api('POST', '/v1/replays', { config: {}, history: huge }, OPERATOR_TOKEN);
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.error.message).toMatch(/^expected a body of at most 5 MiB \(5242880 bytes\)/);
  });

  it('refuses a bad request with what was expected, needs an operator token, and 404s an unknown job', async () => {
    t = await startTestService(LIVE);
    const bad = await t.api('POST', '/v1/replays', { config: { cooldownSeconds: -1 } }, OPERATOR_TOKEN);
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.join('\n')).toMatch(/^config: .*cooldownSeconds/m);
    const noConfig = await t.api('POST', '/v1/replays', { history: '' }, OPERATOR_TOKEN);
    expect(noConfig.status).toBe(400);
    expect(noConfig.body.error.issues).toContain('config: required: expected record, received nothing');
    // A time the replay cannot use (milliseconds given as seconds) is refused, not silently dropped.
    const badUntil = await t.api('POST', '/v1/replays', { config: {}, until: 1.7e15 }, OPERATOR_TOKEN);
    expect(badUntil.status).toBe(400);
    expect(badUntil.body.error.issues.join('\n')).toMatch(
      /timestamp: expected epoch seconds .* received 1700000000000000/,
    );
    expect((await t.api('POST', '/v1/replays', { config: {} })).status).toBe(401);
    expect((await t.api('POST', '/v1/replays', { config: {} }, PRODUCER_TOKEN)).status).toBe(403);
    const unknown = await t.api('GET', '/v1/replays/00000000-0000-4000-8000-000000000000');
    expect(unknown.status).toBe(404);
    expect((await t.api('GET', '/v1/replays/nope')).status).toBe(400);
  });
});
