/**
 * A shadow policy takes a model over from the live service's stored snapshot (PolicyEngine.adopt) and steps
 * it from there with the flat stepper: it must go on as an engine that saw the model from its promotion,
 * and refuse a snapshot in a state the machine does not have instead of leaving the model stuck in it.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { PolicyEngine, type RecordedInput } from '../../src/lab/engine.ts';
import { MODEL_MACHINE_ID } from '../../src/machines/model-machine.ts';

const config = parseConfig({ detection: { mode: 'threshold' } });
const T0 = Date.UTC(2026, 0, 1);
let line = 0;
const promotion = (version: string, at: number): RecordedInput => ({
  kind: 'promotion',
  at,
  payload: { model_id: 'm', version, elo: 1500 },
  line: ++line,
});
const evaluation = (drop: number, at: number): RecordedInput => ({
  kind: 'evaluation',
  at,
  payload: {
    model_id: 'm',
    current_elo: 1500 - drop,
    baseline_elo: 1500,
    games_played: 200,
    event_id: `e${at}`,
  },
  line: ++line,
});

describe('a model adopted from a stored snapshot', () => {
  it('goes on as the engine that saw it from its promotion', () => {
    const seen = new PolicyEngine(config);
    for (const input of [promotion('v1', T0), promotion('v2', T0 + 60_000), evaluation(0, T0 + 120_000)])
      expect(seen.feed(input)).toBeNull();
    const stored = (seen as unknown as { modelHosts: Map<string, { snapshot: unknown }> }).modelHosts.get(
      'm',
    )!;
    const adopted = new PolicyEngine(config);
    adopted.advance(T0 + 120_000);
    expect(adopted.adopt('m', { machine: MODEL_MACHINE_ID, snapshot: stored.snapshot })).toBe(true);
    // A bad version's evaluations, then the rollback's cooldown: both engines decide the same.
    const later = [90, 90, 90].map((drop, i) => evaluation(drop, T0 + 180_000 + i * 60_000));
    for (const input of later) {
      seen.feed(input);
      adopted.feed(input);
    }
    expect(adopted.modelState('m')).toEqual(seen.modelState('m'));
    expect(adopted.modelState('m')?.productionVersion).toBe('v1');
    const rollbacks = (e: PolicyEngine) =>
      e.summary().models[0]!.rollbacks.map((r) => [r.fromVersion, r.toVersion]);
    expect(rollbacks(adopted)).toEqual([['v2', 'v1']]);
    expect(rollbacks(adopted)).toEqual(rollbacks(seen));
  });

  it('in a state the machine does not have is refused, not kept', () => {
    const engine = new PolicyEngine(config);
    const snapshot = { value: 'sleeping', context: { modelId: 'm', configKey: 'm' } };
    expect(() => engine.adopt('m', { machine: MODEL_MACHINE_ID, snapshot })).toThrow(
      /unknown state "sleeping"/,
    );
    expect(engine.modelState('m')).toBeNull();
  });
});
