/** The per-model detection mode: an override applies to its model only, whatever the model is called. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { modelPolicyFrom } from '../../src/machines/model-policy.ts';
import { judgedStatistically } from '../../src/machines/detector.ts';

const window = { wins: 10, draws: 5, losses: 5 };

describe('detection mode per model', () => {
  it('a model named like a member of Object.prototype takes the default mode', () => {
    const policy = modelPolicyFrom(parseConfig({ detection: { mode: 'statistical' } }));
    for (const name of ['toString', 'constructor', 'hasOwnProperty', '__proto__', 'm1']) {
      expect(judgedStatistically(name, window, policy)).toBe(true);
    }
    expect(judgedStatistically('m1', undefined, policy)).toBe(false);
  });

  it('an override applies to its model only', () => {
    const policy = modelPolicyFrom(
      parseConfig({ detection: { mode: 'statistical' }, models: { m1: { detectionMode: 'threshold' } } }),
    );
    expect(judgedStatistically('m1', window, policy)).toBe(false);
    expect(judgedStatistically('m2', window, policy)).toBe(true);
    expect(judgedStatistically('toString', window, policy)).toBe(true);
  });
});
