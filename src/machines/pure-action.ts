import { enqueueActions, type EventObject } from 'xstate';

/** What the machines emit for the runtime: their publications (the answer is read back with `outcomeOf`). */
export interface Emitted<TPublish> {
  type: 'publish';
  event: TPublish;
}

/** One action's work: it changes a draft of the context, adds publications and may answer the caller. */
export interface ActionDraft<TContext, TPublish, TOutcome> {
  context: TContext;
  readonly publish: TPublish[];
  outcome: TOutcome | undefined;
}

/**
 * Binds a pure action to XState: the draft's context becomes the assignment, its publications are emitted in
 * order, and its answer is kept for `outcomeOf(event)`. Actions of one transition run in order, each on the
 * context the previous one left (XState v5 applies assignments as it goes).
 */
export function pureAction<TContext, TEvent extends EventObject, TParams, TPublish, TOutcome>(
  outcomes: WeakMap<object, TOutcome>,
  draftOf: (context: TContext, event: TEvent) => ActionDraft<TContext, TPublish, TOutcome>,
  run: (draft: ActionDraft<TContext, TPublish, TOutcome>, event: TEvent, params: TParams) => void,
): never {
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
    const draft = draftOf(context, event);
    run(draft, event, params);
    if (draft.context !== context) enqueue.assign(() => draft.context);
    for (const published of draft.publish) enqueue.emit({ type: 'publish', event: published });
    if (draft.outcome !== undefined) outcomes.set(event, draft.outcome);
  };
  return enqueueActions(collect as never) as unknown as never;
}
