import type { AnyStateMachine } from 'xstate';
import { createModelMachine } from './model-machine.ts';
import { createTrainingMachine } from './training-machine.ts';
import { modelPolicyFrom } from './model-policy.ts';
import { ConfigSchema } from '../config/schema.ts';
import { declaredTransitions } from './walk.ts';

/**
 * Mermaid state diagrams read off the machine definitions themselves (not a hand-kept copy), so the
 * README's diagrams go stale only if nobody regenerates them; a test catches that. Each line is one state,
 * one target and one event, with the guards of its transitions in order of precedence (`otherwise`: the
 * fallback when none holds); a transition that stays in its state is drawn as a loop.
 */
export function toMermaid(machine: AnyStateMachine): string {
  const lines = ['stateDiagram-v2', `  [*] --> ${String(machine.root.initial?.target[0]?.key)}`];
  const edges = new Map<string, string[]>();
  for (const t of declaredTransitions(machine)) {
    const key = `${t.from} --> ${t.target ?? t.from} : ${t.event}`;
    edges.set(key, [...(edges.get(key) ?? []), t.guard ?? 'otherwise']);
  }
  for (const [edge, guards] of edges) {
    const shown = guards.length === 1 && guards[0] === 'otherwise' ? '' : ` [${guards.join(' / ')}]`;
    lines.push(`  ${edge}${shown}`);
  }
  return lines.join('\n');
}

/** The diagrams do not depend on thresholds; the default policy builds the machines. */
const defaults = ConfigSchema.parse({});

export function modelDiagram(): string {
  return toMermaid(createModelMachine(modelPolicyFrom(defaults)));
}

export function trainingDiagram(): string {
  return toMermaid(createTrainingMachine({ autoResumeMs: null }));
}
