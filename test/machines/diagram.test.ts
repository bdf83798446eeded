/**
 * The diagrams carry the policy: every guard of every transition appears on its edge, in order, so the
 * chart says why (a CRITICAL rollback, an approval request, a repeat the cooldown keeps quiet).
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { createModelMachine } from '../../src/machines/model-machine.ts';
import { createTrainingMachine } from '../../src/machines/training-machine.ts';
import { modelPolicyFrom } from '../../src/machines/model-policy.ts';
import { modelDiagram, trainingDiagram } from '../../src/machines/diagram.ts';
import { declaredTransitions } from '../../src/machines/walk.ts';

const cases = [
  ['model', createModelMachine(modelPolicyFrom(parseConfig({}))), modelDiagram()],
  ['training', createTrainingMachine({ autoResumeMs: null }), trainingDiagram()],
] as const;

describe('generated diagrams', () => {
  for (const [name, machine, diagram] of cases) {
    it(`the ${name} diagram shows every guard on its transition`, () => {
      const lines = diagram.split('\n');
      for (const t of declaredTransitions(machine)) {
        if (t.guard === null) continue;
        const line = lines.find(
          (l) => l.startsWith(`  ${t.from} --> ${t.target ?? t.from} : ${t.event} [`) && l.includes(t.guard!),
        );
        expect(line, `${t.from} --${t.event} [${t.guard}]-->`).toBeDefined();
      }
    });
  }

  it('names every guard and action after the policy, none after the mechanism', () => {
    for (const [, machine] of cases) {
      const names = JSON.stringify(machine.definition);
      expect(names).not.toMatch(/"leadsTo"|"apply"/);
    }
    // The JSON definition (what the Stately inspector and Studio load) carries the same names.
    const model = JSON.stringify(cases[0][1].definition);
    for (const name of ['isCritical', 'needsApproval', 'isRepeatWithinCooldown', 'startAutomaticRollback'])
      expect(model).toContain(`"${name}"`);
    expect(modelDiagram()).toContain('healthy --> rollingBack : EVALUATED [isCritical / mustRollBack]');
    expect(modelDiagram()).toContain('isRepeatWithinCooldown');
  });
});
