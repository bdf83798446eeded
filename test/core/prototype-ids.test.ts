/**
 * Model ids and config keys are the producers' words: "constructor", "toString" or "__proto__" are legal ids
 * (letters, digits, "_", ".", "-"). A lookup by id in a plain object finds Object.prototype's members for
 * them, so such a model would be judged by another rule than the one configured. Every id must be judged
 * exactly as an ordinary one: the same answers, the same events, the same rollbacks.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { startTestWarden } from '../support/test-warden.ts';
import { replay } from '../../src/lab/replay.ts';
import { parseConfig } from '../../src/config/load.ts';
import { overlayConfig } from '../../src/lab/candidate.ts';
import { jsonLines } from '../../src/lab/sources.ts';

const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype).filter((n) =>
  /^[A-Za-z0-9_.-]+$/.test(n),
);

/** The answers and publications of one scripted life, with the model's id replaced by a placeholder. */
async function life(modelId: string, configKey: string | null): Promise<unknown[]> {
  const t = await startTestWarden({
    detection: { mode: 'statistical' },
    models: {
      other: { configKey: 'elsewhere' },
      ...(configKey === null ? {} : { [modelId]: { configKey } }),
    },
  });
  t.registry.autoSettle = true;
  const seen: unknown[] = [];
  const anonymous = (value: unknown) =>
    JSON.parse(
      JSON.stringify(value)
        .replaceAll(modelId, '<model>')
        .replaceAll(configKey ?? modelId, '<config>'),
    );
  try {
    for (const version of ['v1', 'v2']) {
      seen.push(anonymous((await t.warden.promote({ model_id: modelId, version, elo: 1500 })).outcome));
    }
    for (let i = 0; i < 6; i++) {
      const result = await t.warden.evaluate({
        model_id: modelId,
        games_played: 100,
        wins: 30,
        draws: 0,
        losses: 70,
        event_id: `e${i}`,
      });
      seen.push(anonymous({ state: result.state, outcome: result.outcome }));
      t.clock.advance(60_000);
      await t.warden.idle();
    }
    seen.push(anonymous(t.bus.log.map((m) => [m.subject, (m.data as { type?: string }).type ?? null])));
    seen.push(anonymous(t.warden.trainingStatus(modelId)));
    return seen;
  } finally {
    await t.close();
  }
}

describe('ids named like Object.prototype members', () => {
  it('are judged by the configured rule, exactly like an ordinary id', async () => {
    const ordinary = await life('plain_model', 'plain_config');
    // The ordinary life does reach the statistical verdict (else the comparison would prove nothing).
    expect(JSON.stringify(ordinary)).toContain('promotion_rolled_back');
    const configurable = PROTOTYPE_NAMES.filter((n) => n !== '__proto__');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...configurable),
        fc.constantFrom(...configurable, 'plain_config'),
        async (modelId, configKey) => {
          expect(await life(modelId, configKey === modelId ? 'plain_config' : configKey)).toEqual(ordinary);
        },
      ),
      { numRuns: 12 },
    );
    // Without an override of its own, every such id (even "__proto__") lives like an ordinary one.
    const unconfigured = await life('plain_model', null);
    for (const id of PROTOTYPE_NAMES) expect(await life(id, null)).toEqual(unconfigured);
  });

  it('an override for "__proto__" is refused with a clear error, not silently dropped', () => {
    const models = JSON.parse('{"__proto__": {"configKey": "shared"}}');
    expect(() => parseConfig({ models })).toThrow(
      /models\.__proto__.*expected a model id other than "__proto__"/s,
    );
    // The same through a shadow policy's overrides, laid over the live configuration.
    const live = parseConfig({});
    expect(() =>
      overlayConfig(live, JSON.parse('{"models": {"__proto__": {"configKey": "x"}}}'), 's'),
    ).toThrow(/models\.__proto__.*expected a model id other than "__proto__"/s);
    const constructor = overlayConfig(
      live,
      JSON.parse('{"models": {"constructor": {"configKey": "x"}}}'),
      's',
    );
    expect(constructor.models['constructor']?.configKey).toBe('x');
  });

  it('replay reports them like any other (no NaN hours, no inherited entries)', () => {
    const config = parseConfig({ detection: { mode: 'threshold' } });
    for (const id of PROTOTYPE_NAMES) {
      const lines = [
        { kind: 'promotion', model_id: id, version: 'v1', elo: 1500, timestamp: 1_767_225_600 },
        { kind: 'promotion', model_id: id, version: 'v2', elo: 1500, timestamp: 1_767_225_660 },
        { kind: 'evaluation', model_id: id, current_elo: 1400, games_played: 200, timestamp: 1_767_225_720 },
      ].map((l) => JSON.stringify(l));
      const run = replay(config, jsonLines(lines.join('\n')), { until: 1_767_225_600_000 + 7_200_000 });
      expect(run.issues).toEqual([]);
      expect(run.summary.models.map((m) => [m.modelId, m.rollbacks.length])).toEqual([[id, 1]]);
      expect(Object.keys(run.summary.pausedHours)).toEqual([id]);
      expect(run.summary.pausedHours[id]).toBeCloseTo(2 - 2 / 60, 6);
    }
  });
});
