/**
 * Warden's machines stepped without XState's interpreter, for the policy lab (src/lab/engine.ts), where a
 * replay runs millions of events and XState's generic work per event (the state-node sets, a copy of the
 * context and a new snapshot per assignment, the action objects of `enqueueActions`) cost more than the
 * policy itself.
 *
 * The stepper reads the machine's own definition: each state's transitions in order of precedence, their
 * named guards and actions (from `machine.implementations`), their targets. It applies them as the
 * interpreter does for the subset Warden's machines use: one level of states, transitions keyed by an
 * exact event type, guards by name (with or without params), actions made by `pureAction` (each runs on the
 * context the previous one left, publications in order), no entry or exit actions, no eventless, delayed or
 * invoked anything. A machine outside that subset is refused when its stepper is made, so a future change
 * of a machine cannot make the lab drift silently; test/machines/flat-step.test.ts compares the two, event
 * by event, on every declared transition of both machines and over random scenarios.
 */
import type { AnyStateMachine, EventObject } from 'xstate';
import { pureBodyOf, type PureBody } from './pure-action.ts';

/** A machine's state as the stepper keeps it: its state name and its context. */
export interface FlatSnapshot<TState extends string, TContext> {
  readonly value: TState;
  readonly context: TContext;
}

export type FlatStep<TState extends string, TContext, TEvent extends EventObject, TPublish> = (
  snapshot: FlatSnapshot<TState, TContext>,
  event: TEvent,
  publish: TPublish[],
) => FlatSnapshot<TState, TContext>;

type Guard = (args: { context: unknown; event: EventObject }, params: unknown) => boolean;

interface CompiledTransition {
  readonly guard: ((context: unknown, event: EventObject) => boolean) | null;
  readonly target: string | null;
  readonly actions: ReadonlyArray<{
    readonly body: PureBody<unknown, never, unknown, unknown>;
    readonly params: unknown;
  }>;
}

/** Why a machine cannot be stepped flat, or null. */
function unsupported(machine: AnyStateMachine): string | null {
  const root = machine.root;
  if (root.entry.length > 0 || root.exit.length > 0 || root.always || root.invoke.length > 0)
    return 'the root has entry, exit, eventless or invoked behaviour';
  if (root.transitions.size > 0) return 'the root has transitions of its own';
  for (const node of Object.values(root.states)) {
    const where = `state ${node.key}`;
    if (node.type !== 'atomic') return `${where} is ${node.type}, not atomic`;
    if (node.entry.length > 0 || node.exit.length > 0) return `${where} has entry or exit actions`;
    if (node.always) return `${where} has eventless transitions`;
    if (node.after.length > 0) return `${where} has delayed transitions`;
    if (node.invoke.length > 0) return `${where} invokes an actor`;
    for (const type of node.transitions.keys())
      if (type.includes('*')) return `${where} has a wildcard transition (${type})`;
  }
  return null;
}

function nameOf(ref: unknown): { type: string; params: unknown } {
  if (typeof ref === 'string') return { type: ref, params: undefined };
  if (typeof ref === 'object' && ref !== null && typeof (ref as { type?: unknown }).type === 'string') {
    const { type, params } = ref as { type: string; params?: unknown };
    if (typeof params === 'function') throw new Error(`${type}: dynamic params are not supported`);
    return { type, params };
  }
  throw new Error(`an inline guard or action is not supported (${typeof ref})`);
}

function compileGuard(machine: AnyStateMachine, ref: unknown): CompiledTransition['guard'] {
  if (ref === undefined) return null;
  const { type, params } = nameOf(ref);
  const guard = (machine.implementations.guards as Record<string, unknown>)[type];
  if (typeof guard !== 'function' || 'check' in guard)
    throw new Error(`guard ${type} is not a plain named guard`);
  const check = guard as Guard;
  return (context, event) => check({ context, event }, params);
}

function compileAction(machine: AnyStateMachine, ref: unknown): CompiledTransition['actions'][number] {
  const { type, params } = nameOf(ref);
  const body = pureBodyOf((machine.implementations.actions as Record<string, unknown>)[type]);
  if (!body) throw new Error(`action ${type} is not a pure action (pureAction)`);
  return { body, params };
}

/**
 * The stepper of `machine`: the next state and context for an event (publications appended to `publish`),
 * or the same snapshot when no transition takes the event. A guard or an action that throws throws here,
 * and the snapshot passed in is left as it was. Throws at once for a machine outside the subset it steps.
 */
export function flatStepper<TState extends string, TContext, TEvent extends EventObject, TPublish>(
  machine: AnyStateMachine,
): FlatStep<TState, TContext, TEvent, TPublish> {
  const problem = unsupported(machine);
  if (problem !== null) throw new Error(`machine ${machine.id} cannot be stepped flat: ${problem}`);
  const table = new Map<string, Map<string, CompiledTransition[]>>();
  for (const node of Object.values(machine.root.states)) {
    const byEvent = new Map<string, CompiledTransition[]>();
    for (const [type, transitions] of node.transitions) {
      byEvent.set(
        type,
        transitions.map((t) => ({
          guard: compileGuard(machine, t.guard),
          target: t.target?.[0]?.key ?? null,
          actions: t.actions.map((a) => compileAction(machine, a)),
        })),
      );
    }
    table.set(node.key, byEvent);
  }
  return (snapshot, event, publish) => {
    const transitions = table.get(snapshot.value)?.get(event.type);
    if (transitions === undefined) return snapshot;
    for (const t of transitions) {
      if (t.guard !== null && !t.guard(snapshot.context, event)) continue;
      let context = snapshot.context as unknown;
      for (const { body, params } of t.actions) {
        const done = body(context, event as never, params);
        context = done.context;
        for (const published of done.publish) publish.push(published as TPublish);
      }
      return { value: (t.target ?? snapshot.value) as TState, context: context as TContext };
    }
    return snapshot;
  };
}
