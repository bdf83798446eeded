/**
 * Reading a machine's definition, for the diagrams and the model-based tests: its declared transitions in
 * order of precedence, the one an event takes, and one step through the machine itself.
 */
import { createActor, type AnyStateMachine, type EventObject } from 'xstate';

/** One guarded transition of a machine's definition, as the diagrams and the model-based tests read it. */
export interface DeclaredTransition {
  readonly from: string;
  readonly event: string;
  /** The guard's name, or null for the fallback taken when no guard before it holds. */
  readonly guard: string | null;
  /** The target state, or null when the transition stays (no exit, no entry). */
  readonly target: string | null;
}

/** A guard's name, whether the definition gives it as a string or as `{ type, params }`. */
function guardName(guard: unknown): string | null {
  if (guard === undefined || guard === null) return null;
  if (typeof guard === 'string') return guard;
  return (guard as { type?: string }).type ?? null;
}

/** Every transition of a machine, in the order of its definition (the order of precedence). */
export function declaredTransitions(machine: AnyStateMachine): DeclaredTransition[] {
  const out: DeclaredTransition[] = [];
  for (const state of Object.values(machine.root.states)) {
    for (const [event, transitions] of state.transitions) {
      for (const t of transitions) {
        out.push({
          from: state.key,
          event,
          guard: guardName(t.guard),
          target: t.target?.[0]?.key ?? null,
        });
      }
    }
  }
  return out;
}

/** The transition an event takes from a snapshot (the first whose guard holds), or null if none. */
export function transitionTaken(
  machine: AnyStateMachine,
  snapshot: Parameters<AnyStateMachine['getTransitionData']>[0],
  event: EventObject,
): DeclaredTransition | null {
  const [taken] = machine.getTransitionData(snapshot, event);
  if (!taken) return null;
  return {
    from: String(snapshot.value),
    event: event.type,
    guard: guardName(taken.guard),
    target: taken.target?.[0]?.key ?? null,
  };
}

export interface MachineStep<TState extends string, TContext, TPublish, TOutcome> {
  /** null: the event left the state as it was. */
  readonly target: TState | null;
  readonly context: TContext;
  readonly publish: readonly TPublish[];
  readonly outcome: TOutcome | undefined;
}

/** One event in one state through a machine of Warden's (it emits `publish` and answers via `outcomeOf`). */
export function stepThrough<TState extends string, TContext, TPublish, TOutcome>(
  machine: AnyStateMachine & { outcomeOf(event: EventObject): TOutcome | undefined },
  state: TState,
  context: TContext,
  event: EventObject,
  input: unknown,
): MachineStep<TState, TContext, TPublish, TOutcome> {
  const snapshot = machine.resolveState({ value: state, context: context as never });
  const actor = createActor(machine, { snapshot, input });
  const publish: TPublish[] = [];
  actor.on('publish', (emitted: { event: TPublish }) => publish.push(emitted.event));
  actor.start();
  actor.send(event);
  const after = actor.getSnapshot();
  actor.stop();
  return {
    target: after.value === state ? null : (after.value as TState),
    context: after.context as TContext,
    publish,
    outcome: machine.outcomeOf(event),
  };
}
