/**
 * Acceptance (issue 15): a scripted scenario recorded by the real running service (embedded mode: HTTP
 * inputs, the input journal, the rollback history and the published events), replayed with the live
 * configuration, gives exactly the decisions the service made: the same rollbacks with the same targets
 * and ids, and the same approvals requested.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { buildService, type Service } from '../../src/service.ts';
import { silentLogger } from '../../src/logger.ts';
import { InputJournal } from '../../src/embedded/input-journal.ts';
import { sequenced } from '../../src/lab/sources.ts';
import { replay } from '../../src/lab/replay.ts';
import { makeDataDir } from '../support/test-warden.ts';
import type { BusMessage } from '../../src/actors/ports.ts';

let service: Service | null = null;
let dir: string | null = null;
afterEach(async () => {
  await service?.stop();
  service = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

const LIVE = {
  detection: { mode: 'threshold' as const },
  approval: { requireForSevere: true, timeoutSeconds: 900, onTimeout: 'rollback' as const },
  cooldownSeconds: 600,
  training: { autoResumeSeconds: 7200 },
};

describe('record a scenario through the service, replay it with the live configuration', () => {
  it('reproduces exactly the rollbacks, their targets and the approvals requested', async () => {
    dir = await makeDataDir();
    const config = parseConfig({ ...LIVE, dataDir: dir, http: { port: 0 } });
    const clock = new ManualClock(Date.UTC(2026, 2, 1));
    service = await buildService(config, { logger: silentLogger, clock });
    const { warden } = service;
    const published: BusMessage[] = [];
    warden.bus.subscribe('warden.evt.>', (m) => {
      published.push(m);
    });
    const post = async (path: string, body: unknown) => {
      const response = await fetch(`${service!.httpUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(response.status, await response.clone().text()).toBe(200);
      await warden.idle();
    };
    // A minute at a time: every deadline here falls on a minute, so the registry answers a rollback started
    // by a timer at the time it fired (as a live registry answers within milliseconds).
    const minutes = async (n: number) => {
      for (let i = 0; i < n; i++) {
        clock.advance(60_000);
        await warden.idle();
      }
    };
    const evaluate = (model: string, elo: number, id?: string) =>
      post('/v1/evaluations', {
        ...(id ? { event_id: id } : {}),
        model_id: model,
        current_elo: elo,
        baseline_elo: 1500,
        games_played: 400,
      });

    // Two models, one config each. go: a severe regression that waits for an approval nobody gives (it
    // expires and rolls back), and a redelivered evaluation; hex: a moderate regression beyond the moderate
    // rollback drop (with approvals required, it waits too, and expires), then a critical one (rolled back at once, never
    // waits), a recovery; and auto-resume of both training configs.
    await post('/v1/promotions', { model_id: 'hex', version: 'v1', elo: 1500 });
    await post('/v1/promotions', { model_id: 'go', version: 'v1', elo: 1500 });
    for (let i = 0; i < 3; i++) {
      await minutes(10);
      await evaluate('hex', 1498 - i);
      await evaluate('go', 1501 + i);
    }
    await post('/v1/promotions', { model_id: 'hex', version: 'v2', elo: 1500 });
    await post('/v1/promotions', { model_id: 'go', version: 'v2', elo: 1500 });
    await minutes(10);
    await evaluate('hex', 1462, 'hex-e1');
    await evaluate('go', 1445, 'go-e1');
    await minutes(5);
    await evaluate('go', 1445, 'go-e1'); // redelivered: a duplicate
    await evaluate('hex', 1460, 'hex-e2');
    // go's approval deadline (15 min) passes with no answer.
    await minutes(20);
    await evaluate('go', 1500);
    await minutes(30);
    await post('/v1/promotions', { model_id: 'hex', version: 'v3', elo: 1505 });
    await minutes(10);
    await evaluate('hex', 1410);
    await minutes(20);
    await evaluate('hex', 1504);
    await minutes(150); // auto-resume (2 h) of both configs falls in here
    await evaluate('go', 1499);
    await evaluate('hex', 1503);

    // What the service did: its rollback history, and the approvals it published.
    const byTime = (a: { at: number; id: unknown }, b: { at: number; id: unknown }) =>
      a.at - b.at || String(a.id).localeCompare(String(b.id));
    const history = (await warden.history({ limit: 100 })).rollbacks.reverse();
    const recordedRollbacks = history
      .map((r) => ({
        model: r.model_id,
        id: r.rollback_id,
        from: r.from_version,
        to: r.to_version,
        trigger: r.triggered_by,
        at: Math.round((r.timestamp as number) * 1000),
      }))
      .sort(byTime);
    const approvals = (m: BusMessage[]) =>
      m
        .filter((x) => x.subject.startsWith('warden.evt.rollback_approval_requested.'))
        .map((x) => x.data as Record<string, unknown>);
    const recordedApprovals = approvals(published).map((a) => ({
      model: a.model_id,
      detection: a.detection_id,
      severity: a.severity,
      held: a.held_because,
      to: a.to_version,
      deadline: Math.round((a.deadline as number) * 1000),
    }));
    expect(recordedRollbacks.map((r) => `${r.model} ${r.from}->${r.to} ${r.trigger}`)).toEqual([
      'go v2->v1 approval_expired',
      'hex v2->v1 approval_expired',
      'hex v3->v1 auto_regression_critical',
    ]);
    expect(recordedApprovals.map((a) => `${a.model} ${a.severity} ${a.held}`)).toEqual([
      'hex moderate approval_required',
      'go severe approval_required',
    ]);
    const end = clock.now();
    await service.stop();
    service = null;

    // The replay reads the journal the service kept, from its SQLite file.
    const journal = InputJournal.openToRead(join(dir, 'warden.db'))!;
    const entries = [...journal.entries()];
    journal.close();
    expect(entries).toHaveLength(20); // 5 promotions, 15 evaluations (the duplicate too)
    const run = replay(config, sequenced(entries, 'journal'), { until: end });
    expect(run.issues).toEqual([]);
    const replayedRollbacks = run.summary.models
      .flatMap((m) =>
        m.rollbacks.map((r) => ({
          model: m.modelId,
          id: r.rollbackId,
          from: r.fromVersion,
          to: r.toVersion,
          trigger: r.trigger,
          at: r.at,
        })),
      )
      .sort(byTime);
    expect(replayedRollbacks).toEqual(recordedRollbacks);
    const replayedApprovals = run.summary.models.flatMap((m) =>
      m.approvals.map((a) => ({
        model: m.modelId,
        detection: a.detectionId,
        severity: a.severity,
        held: a.heldBecause,
        to: a.toVersion,
        deadline: a.deadline,
      })),
    );
    const byDetection = (a: { detection: unknown }, b: { detection: unknown }) =>
      String(a.detection).localeCompare(String(b.detection));
    expect(replayedApprovals.sort(byDetection)).toEqual(recordedApprovals.sort(byDetection));
    // Training paused and resumed by itself in both: paused 2 h per rollback, as the service did.
    const resumed = published.filter((m) => m.subject.startsWith('warden.evt.training_resumed.'));
    const pausedSeconds = resumed.reduce(
      (s, m) => s + (m.data as { paused_seconds: number }).paused_seconds,
      0,
    );
    const replayedHours = Object.values(run.summary.pausedHours).reduce((a, b) => a + b, 0);
    expect(replayedHours).toBeCloseTo(pausedSeconds / 3600, 6);
  });
});
