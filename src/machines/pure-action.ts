import { enqueueActions, type EventObject } from 'xstate';

/** What the machines emit for the runtime: their publications (the answer is read back with `outcomeOf`). */
export interface Emitted<TPublish> {
  type: 'publish';
  event: TPublish;
}

/** Where an action leaves its answer to the event (a WeakMap, or the machine's `LastOutcome`). */
export interface OutcomeSink<TOutcome> {
  set(event: object, outcome: TOutcome): unknown;
}

/**
 * The answer to the event a machine took last, read back with `outcomeOf(event)` right after `send`: one
 * slot per machine instead of a WeakMap entry per event (every entry of a WeakMap keyed by short-lived
 * events is extra work for the garbage collector). XState takes an event to the end before the next one,
 * and every caller reads the answer right after its `send`; an earlier event reads as unanswered.
 */
export class LastOutcome<TOutcome> implements OutcomeSink<TOutcome> {
  private event: object | null = null;
  private outcome: TOutcome | undefined;

  set(event: object, outcome: TOutcome): void {
    this.event = event;
    this.outcome = outcome;
  }

  get(event: object): TOutcome | undefined {
    return event === this.event ? this.outcome : undefined;
  }
}

/** One action's work: it changes a draft of the context, adds publications and may answer the caller. */
export interface ActionDraft<TContext, TPublish, TOutcome> {
  context: TContext;
  readonly publish: TPublish[];
  outcome: TOutcome | undefined;
}

/** A pure action's body: the context it leaves and what it publishes (its answer kept as with XState). */
export type PureBody<TContext, TEvent, TParams, TPublish> = (
  context: TContext,
  event: TEvent,
  params: TParams,
) => { readonly context: TContext; readonly publish: readonly TPublish[] };

/** Every action made by `pureAction`, to its body: what the lab's flat stepper runs (flat-step.ts). */
const bodies = new WeakMap<object, PureBody<unknown, never, unknown, unknown>>();

/** The body of an action made by `pureAction`, or undefined for any other action. */
export function pureBodyOf(action: unknown): PureBody<unknown, never, unknown, unknown> | undefined {
  return typeof action === 'function' || (typeof action === 'object' && action !== null)
    ? bodies.get(action)
    : undefined;
}

/**
 * Binds a pure action to XState: the draft's context becomes the assignment, its publications are emitted in
 * order, and its answer is kept for `outcomeOf(event)`. Actions of one transition run in order, each on the
 * context the previous one left (XState v5 applies assignments as it goes).
 */
export function pureAction<TContext, TEvent extends EventObject, TParams, TPublish, TOutcome>(
  outcomes: OutcomeSink<TOutcome>,
  draftOf: (context: TContext, event: TEvent) => ActionDraft<TContext, TPublish, TOutcome>,
  run: (draft: ActionDraft<TContext, TPublish, TOutcome>, event: TEvent, params: TParams) => void,
): never {
  const body = (context: TContext, event: TEvent, params: TParams) => {
    const draft = draftOf(context, event);
    run(draft, event, params);
    if (draft.outcome !== undefined) outcomes.set(event, draft.outcome);
    return draft;
  };
  const collect = (
    {
      context,
      event,
      enqueue,
    }: {
      context: TContext;
      event: TEvent;
      enqueue: { assign(next: () => TContext): void; emit(emitted: Emitted<TPublish>): void };
    },
    params: TParams,
  ) => {
    const draft = body(context, event, params);
    if (draft.context !== context) enqueue.assign(() => draft.context);
    for (const published of draft.publish) enqueue.emit({ type: 'publish', event: published });
  };
  const action = enqueueActions(collect as never) as unknown as object;
  bodies.set(action, body as never);
  return action as never;
}
