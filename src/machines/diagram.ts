import type { AnyStateMachine } from 'xstate';
import { createModelMachine } from './model-machine.ts';
import { createTrainingMachine } from './training-machine.ts';
import { modelPolicyFrom } from './model-policy.ts';
import { ConfigSchema } from '../config/schema.ts';

/**
 * Mermaid state diagrams read off the machine definitions themselves (not a hand-kept copy), so the
 * README's diagrams go stale only if nobody regenerates them; a test catches that.
 */
export function toMermaid(machine: AnyStateMachine): string {
  const lines = ['stateDiagram-v2', `  [*] --> ${String(machine.root.initial?.target[0]?.key)}`];
  for (const state of Object.values(machine.root.states)) {
    const edges = new Map<string, string[]>();
    for (const [eventType, transitions] of state.transitions) {
      if (eventType === '*') continue;
      for (const transition of transitions) {
        for (const target of transition.target ?? []) {
          const key = `${state.key} --> ${target.key}`;
          edges.set(key, [...(edges.get(key) ?? []), eventType]);
        }
      }
    }
    for (const [edge, events] of edges) lines.push(`  ${edge} : ${[...new Set(events)].join(', ')}`);
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
