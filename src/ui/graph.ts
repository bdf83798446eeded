import type { AnyStateMachine } from 'xstate';

export interface MachineEdge {
  readonly from: string;
  readonly to: string;
  readonly events: string[];
  /** Guard names, when the definition names them. */
  readonly guards: string[];
}

export interface MachineGraph {
  readonly id: string;
  readonly initial: string;
  readonly states: string[];
  readonly edges: MachineEdge[];
}

/** The step machine's own guard only says which target the step chose: it names no condition. */
const GENERIC_GUARDS = new Set(['leadsTo']);

function guardName(guard: unknown): string | null {
  if (!guard) return null;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') return guard.name || null;
  const type = (guard as { type?: unknown }).type;
  return typeof type === 'string' && !GENERIC_GUARDS.has(type) ? type : null;
}

/**
 * The states and transitions of a machine, read off its definition (as the README's diagrams are), for the
 * dashboard to draw. Guard names appear as soon as the definitions carry them.
 */
export function machineGraph(machine: AnyStateMachine): MachineGraph {
  const edges = new Map<string, { from: string; to: string; events: Set<string>; guards: Set<string> }>();
  const states = Object.values(machine.root.states);
  for (const state of states) {
    for (const [eventType, transitions] of state.transitions) {
      if (eventType === '*') continue;
      for (const transition of transitions) {
        const guard = guardName((transition as { guard?: unknown }).guard);
        for (const target of transition.target ?? []) {
          const key = `${state.key}->${target.key}`;
          const edge = edges.get(key) ?? {
            from: state.key,
            to: target.key,
            events: new Set<string>(),
            guards: new Set<string>(),
          };
          edge.events.add(eventType);
          if (guard) edge.guards.add(guard);
          edges.set(key, edge);
        }
      }
    }
  }
  return {
    id: machine.id,
    initial: String(machine.root.initial?.target[0]?.key),
    states: states.map((s) => s.key),
    edges: [...edges.values()].map((e) => ({ ...e, events: [...e.events], guards: [...e.guards] })),
  };
}
