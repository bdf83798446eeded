import { enqueueActions, setup, type EventObject } from 'xstate';

/** The result of one pure step: where to go (null: stay), the next context, what to publish, the outcome. */
export interface StepResult<TState extends string, TContext, TPublish, TOutcome> {
  readonly target: TState | null;
  readonly context: TContext;
  readonly publish: readonly TPublish[];
  readonly outcome: TOutcome;
}

/** What the machine emits for the runtime: its publications (the outcome is read back with `outcomeOf`). */
export interface Emitted<TPublish> {
  type: 'publish';
  event: TPublish;
}

export interface StepMachineSpec<
  TState extends string,
  TContext,
  TEvent extends EventObject,
  TInput,
  TPublish,
  TOutcome,
> {
  /** Carries the machine's version: persisted snapshots name the machine they belong to. */
  readonly id: string;
  readonly initial: TState;
  /** The diagram: for each state and event, the states the event may lead to. */
  readonly transitions: Record<TState, Partial<Record<TEvent['type'], readonly TState[]>>>;
  readonly context: (input: TInput) => TContext;
  readonly step: (
    from: TState,
    context: TContext,
    event: TEvent,
  ) => StepResult<TState, TContext, TPublish, TOutcome>;
}

/**
 * Builds an XState machine whose states and allowed transitions are declared as data and whose decisions
 * come from one pure step function. Guards and the action share the step through a cache keyed by the
 * event object: XState evaluates them against the same context and event.
 */
export function createStepMachine<
  TState extends string,
  TContext extends object,
  TEvent extends EventObject,
  TInput,
  TPublish,
  TOutcome,
>(spec: StepMachineSpec<TState, TContext, TEvent, TInput, TPublish, TOutcome>) {
  const cache = new WeakMap<
    object,
    { context: TContext; from: TState; result: StepResult<TState, TContext, TPublish, TOutcome> }
  >();
  const step = (from: TState, context: TContext, event: TEvent) => {
    const hit = cache.get(event);
    if (hit && hit.context === context && hit.from === from) return hit.result;
    const result = spec.step(from, context, event);
    cache.set(event, { context, from, result });
    return result;
  };

  const machineSetup = setup({
    types: {
      context: {} as TContext,
      events: {} as TEvent,
      emitted: {} as Emitted<TPublish>,
      input: {} as TInput,
    },
    guards: {
      leadsTo: ({ context, event }, params: { from: TState; target: TState }) =>
        step(params.from, context, event).target === params.target,
    },
    actions: {
      apply: enqueueActions(({ context, event, enqueue }, params: { from: TState }) => {
        const result = step(params.from, context, event);
        const allowed = spec.transitions[params.from][event.type as TEvent['type']] ?? [];
        if (result.target !== null && result.target !== params.from && !allowed.includes(result.target)) {
          // A decision the diagram does not allow is a bug in the step function: never silently dropped.
          throw new Error(
            `${spec.id}: ${event.type} in ${params.from} decided ${result.target}, which the diagram does not allow`,
          );
        }
        if (result.context !== context) enqueue.assign(() => result.context);
        for (const published of result.publish)
          enqueue.emit({ type: 'publish', event: published } as Emitted<TPublish>);
      }),
    },
  });

  const states = Object.fromEntries(
    (Object.keys(spec.transitions) as TState[]).map((from) => {
      const on = Object.fromEntries(
        Object.entries(spec.transitions[from] as Record<string, readonly TState[]>).map(
          ([eventType, targets]) => [
            eventType,
            [
              ...targets.map((target) => ({
                guard: { type: 'leadsTo' as const, params: { from, target } },
                target,
                actions: { type: 'apply' as const, params: { from } },
              })),
              { actions: { type: 'apply' as const, params: { from } } },
            ],
          ],
        ),
      );
      return [from, { on }];
    }),
  );

  const machine = machineSetup.createMachine({
    id: spec.id,
    initial: spec.initial,
    context: ({ input }) => spec.context(input),
    // Built from `transitions` above; the cast keeps XState's config types tractable.
    states: states as Record<string, object>,
  });

  /**
   * The outcome of the step an event caused, read back by the runtime after `send` (emitting it would
   * cost an action per event on the hot path). Undefined when the state did not accept the event.
   */
  const outcomeOf = (event: TEvent): TOutcome | undefined => cache.get(event)?.result.outcome;
  return Object.assign(machine, { outcomeOf });
}
