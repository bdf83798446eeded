import { createActor, type Actor, type InspectionEvent } from 'xstate';
import type { Logger } from 'pino';
import type { ActorKind, ActorRecord, Clock, EventBus, HistoryRecord, ModelRegistry, OutboxEntry, StateStore } from './ports.ts';
import { ConflictError, UnknownModelError, WardenError } from '../domain/errors.ts';
import { subjectFor, type OutputEvent } from '../domain/events.ts';
import type { ModelMachine } from '../machines/model-machine.ts';
import type { TrainingMachine } from '../machines/training-machine.ts';
import type { ModelPolicy } from '../machines/model-policy.ts';
import { cooldownDeadline } from '../machines/model-logic.ts';
import type { ModelContext, ModelEvent, ModelStateName, Outcome } from '../machines/model-types.ts';
import type { TrainingContext, TrainingEvent, TrainingOutcome, TrainingStateName } from '../machines/training-types.ts';
import { Outbox } from './outbox.ts';

/** Hooks for logs and metrics; every one is optional. */
export interface RuntimeObserver {
  transition?(kind: ActorKind, key: string, from: string, to: string, event: string): void;
  outcome?(kind: ActorKind, key: string, event: string, outcome: Outcome | TrainingOutcome): void;
  published?(event: OutputEvent): void;
  effectFailed?(what: string, error: unknown): void;
}

export interface RuntimeDeps {
  readonly modelMachine: ModelMachine;
  readonly trainingMachine: TrainingMachine;
  readonly modelPolicy: ModelPolicy;
  readonly store: StateStore;
  readonly registry: ModelRegistry;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly prefix: string;
  readonly observer?: RuntimeObserver | undefined;
  /** XState inspection (the Stately inspector); off unless given. */
  readonly inspect?: ((event: InspectionEvent) => void) | undefined;
}

type AnyActor = Actor<ModelMachine> | Actor<TrainingMachine>;

interface Host {
  readonly kind: ActorKind;
  readonly key: string;
  actor: AnyActor;
  readonly configKey: string;
  revision: number;
  /** The last committed snapshot: what a failed commit reverts to. */
  persisted: unknown;
  emitted: Array<{ type: 'publish'; event: OutputEvent } | { type: 'outcome'; outcome: Outcome | TrainingOutcome }>;
  timer: { at: number; handle: unknown } | null;
  log: Logger;
}

interface PendingDispatch {
  readonly host: Host;
  readonly event: ModelEvent | TrainingEvent;
  readonly create: { configKey: string } | undefined;
  readonly outbox: OutboxEntry[];
  readonly history: HistoryRecord[];
  readonly outcome: Outcome | TrainingOutcome;
  readonly resolve: (outcome: Outcome | TrainingOutcome) => void;
  readonly reject: (error: unknown) => void;
}

const MAX_COMMIT_ATTEMPTS = 5;

/**
 * Hosts one live actor per model id and per training-config key. Every event goes through `dispatch`:
 * the actor takes it synchronously (XState's mailbox), the resulting snapshot and its publications are
 * committed to the store in batches (one transaction for all dispatches of one tick), and only then does
 * the caller hear back, the outbox publish, timers re-arm and effects (the registry rollback) start.
 */
export class ActorRuntime {
  private readonly hosts = new Map<string, Host>();
  private batch: PendingDispatch[] = [];
  private flushScheduled = false;
  private flushing: Promise<void> = Promise.resolve();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly rollbacksRunning = new Set<string>();
  private readonly outbox: Outbox;
  private stopped = false;

  constructor(private readonly deps: RuntimeDeps) {
    this.outbox = new Outbox(deps.store, deps.bus, deps.logger, (event) => deps.observer?.published?.(event));
  }

  /** Restores every persisted actor, re-arms timers, resumes unfinished effects and publications. */
  async start(): Promise<void> {
    for (const kind of ['model', 'training'] as const) {
      for (const record of await this.deps.store.loadActors(kind)) this.restore(record);
    }
    for (const host of this.hosts.values()) this.afterCommit(host);
    await this.reconcileRegistry();
    this.outbox.resumePending();
  }

  /** The model actors, for status views. */
  models(): Array<{ state: ModelStateName; context: ModelContext }> {
    return [...this.hosts.values()].filter((h) => h.kind === 'model').map((h) => this.modelView(h));
  }

  model(modelId: string): { state: ModelStateName; context: ModelContext } | null {
    const host = this.hosts.get(`model:${modelId}`);
    return host ? this.modelView(host) : null;
  }

  trainings(): Array<{ state: TrainingStateName; context: TrainingContext }> {
    return [...this.hosts.values()].filter((h) => h.kind === 'training').map((h) => this.trainingView(h));
  }

  training(configKey: string): { state: TrainingStateName; context: TrainingContext } | null {
    const host = this.hosts.get(`training:${configKey}`);
    return host ? this.trainingView(host) : null;
  }

  /** The persisted snapshot of an actor as the store would see it (tests compare against the store). */
  persistedSnapshot(kind: ActorKind, key: string): unknown {
    return this.hosts.get(`${kind}:${key}`)?.persisted;
  }

  dispatchModel(modelId: string, event: ModelEvent, create?: { configKey: string }): Promise<Outcome> {
    return this.dispatch('model', modelId, event, create) as Promise<Outcome>;
  }

  dispatchTraining(configKey: string, event: TrainingEvent): Promise<TrainingOutcome> {
    return this.dispatch('training', configKey, event, { configKey }) as Promise<TrainingOutcome>;
  }

  now(): number {
    return this.deps.clock.now();
  }

  /** Resolves when nothing is left to commit, run, publish or deliver. */
  async idle(): Promise<void> {
    for (;;) {
      await this.flushing;
      await Promise.all([...this.inFlight]);
      await this.outbox.idle();
      await this.deps.bus.idle();
      if (this.batch.length === 0 && this.inFlight.size === 0 && this.outbox.isIdle() && !this.flushScheduled) return;
    }
  }

  /** Stops intake, finishes in-flight work and publications, and cancels timers. */
  async stop(): Promise<void> {
    await this.idle();
    this.stopped = true;
    for (const host of this.hosts.values()) {
      if (host.timer) this.deps.clock.clearTimeout(host.timer.handle);
      host.actor.stop();
    }
  }

  // ---------------------------------------------------------------------------------------------

  private modelView(host: Host) {
    const snapshot = (host.actor as Actor<ModelMachine>).getSnapshot();
    return { state: snapshot.value as ModelStateName, context: snapshot.context };
  }

  private trainingView(host: Host) {
    const snapshot = (host.actor as Actor<TrainingMachine>).getSnapshot();
    return { state: snapshot.value as TrainingStateName, context: snapshot.context };
  }

  private newActor(kind: ActorKind, key: string, configKey: string, persisted: unknown): AnyActor {
    const snapshot = persisted ? (persisted as { snapshot: unknown }).snapshot : undefined;
    const options = {
      id: `${kind}:${key}`,
      ...(snapshot ? { snapshot: snapshot as never } : {}),
      ...(this.deps.inspect ? { inspect: this.deps.inspect } : {}),
    };
    return kind === 'model'
      ? createActor(this.deps.modelMachine, { input: { modelId: key, configKey }, ...options })
      : createActor(this.deps.trainingMachine, { input: { configKey: key }, ...options });
  }

  private attach(host: Host, actor: AnyActor): void {
    host.actor = actor;
    (actor as Actor<ModelMachine>).on('*', (emitted) => host.emitted.push(emitted));
    actor.start();
  }

  private createHost(kind: ActorKind, key: string, configKey: string, record?: ActorRecord): Host {
    const host: Host = {
      kind,
      key,
      actor: undefined as unknown as AnyActor,
      configKey,
      revision: record?.revision ?? 0,
      persisted: record?.snapshot ?? null,
      emitted: [],
      timer: null,
      log: this.deps.logger.child(kind === 'model' ? { modelId: key } : { configKey: key }),
    };
    this.attach(host, this.newActor(kind, key, configKey, host.persisted));
    this.hosts.set(`${kind}:${key}`, host);
    return host;
  }

  private restore(record: ActorRecord): void {
    const wrapped = record.snapshot as { machine?: string; snapshot?: { context?: { configKey?: string } } };
    const expected = record.kind === 'model' ? this.deps.modelMachine.id : this.deps.trainingMachine.id;
    if (wrapped.machine !== expected) {
      throw new WardenError(
        'internal',
        `cannot restore ${record.kind} ${record.key}: stored for machine ${wrapped.machine}, this build runs ${expected}`,
      );
    }
    this.createHost(record.kind, record.key, wrapped.snapshot?.context?.configKey ?? record.key, record);
  }

  private dispatch(
    kind: ActorKind,
    key: string,
    event: ModelEvent | TrainingEvent,
    create: { configKey: string } | undefined,
  ): Promise<Outcome | TrainingOutcome> {
    if (this.stopped) return Promise.reject(new WardenError('unavailable', 'Warden is shutting down', { retryable: true }));
    let host = this.hosts.get(`${kind}:${key}`);
    if (!host) {
      if (!create) return Promise.reject(new UnknownModelError(key));
      host = this.createHost(kind, key, create.configKey);
    }
    return new Promise((resolve, reject) => {
      try {
        this.apply(host, event, create, resolve, reject);
      } catch (error) {
        reject(error);
      }
    });
  }

  private apply(
    host: Host,
    event: ModelEvent | TrainingEvent,
    create: { configKey: string } | undefined,
    resolve: PendingDispatch['resolve'],
    reject: PendingDispatch['reject'],
  ): void {
    const before = host.actor.getSnapshot();
    host.emitted = [];
    (host.actor as Actor<ModelMachine>).send(event as ModelEvent);
    const after = host.actor.getSnapshot();
    if (after.status === 'error') {
      // A bug in a step: put the actor back as it was committed and report it, never crash the service.
      const error = after.error;
      this.replaceActor(host);
      reject(new WardenError('internal', `${host.kind} ${host.key} failed on ${event.type}: ${String(error)}`, { cause: error }));
      return;
    }
    const emitted = host.emitted;
    host.emitted = [];
    const outcome = emitted.find((e) => e.type === 'outcome')?.outcome ?? { kind: 'stale' as const, reason: 'no outcome' };
    const publications = emitted.flatMap((e) => (e.type === 'publish' ? [e.event] : []));
    this.deps.observer?.outcome?.(host.kind, host.key, event.type, outcome);
    if (before.value !== after.value) {
      host.log.info({ from: before.value, to: after.value, event: event.type }, 'transition');
      this.deps.observer?.transition?.(host.kind, host.key, String(before.value), String(after.value), event.type);
    }
    const changed = before.value !== after.value || before.context !== after.context || host.revision === 0;
    if (!changed && publications.length === 0) {
      resolve(outcome);
      return;
    }
    this.batch.push({
      host,
      event,
      create,
      outbox: publications.map((p) => ({ id: p.payload.event_id, subject: subjectFor(this.deps.prefix, p), payload: p.payload })),
      history: publications.flatMap((p): HistoryRecord[] =>
        p.type === 'PROMOTION_ROLLED_BACK' || p.type === 'ROLLBACK_FAILED'
          ? [
              {
                at: Math.round(p.payload.timestamp * 1000),
                modelId: p.payload.model_id,
                kind: p.type === 'PROMOTION_ROLLED_BACK' ? 'rolled_back' : 'rollback_failed',
                payload: p.payload as Record<string, unknown>,
              },
            ]
          : [],
      ),
      outcome,
      resolve,
      reject,
    });
    this.scheduleFlush();
  }

  /** Back to the last committed snapshot (or to a fresh actor, when nothing was committed yet). */
  private replaceActor(host: Host): void {
    host.actor.stop();
    this.attach(host, this.newActor(host.kind, host.key, host.configKey, host.persisted));
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate lets every dispatch of this tick join one transaction.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flushing = this.flushing.then(() => this.flush());
    });
  }

  private async flush(attempt = 1): Promise<void> {
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    const hosts = [...new Set(batch.map((d) => d.host))];
    const records: ActorRecord[] = hosts.map((host) => ({
      kind: host.kind,
      key: host.key,
      snapshot: { machine: host.actor.logic.id, snapshot: host.actor.getPersistedSnapshot() },
      revision: host.revision,
    }));
    try {
      const revisions = await this.deps.store.commit({
        actors: records,
        outbox: batch.flatMap((d) => d.outbox),
        history: batch.flatMap((d) => d.history),
      });
      hosts.forEach((host, i) => {
        host.revision = revisions[i]!;
        host.persisted = records[i]!.snapshot;
      });
    } catch (error) {
      await this.retryBatch(batch, hosts, error, attempt);
      return;
    }
    for (const d of batch) {
      if (d.host.kind === 'model' && d.outcome.kind === 'promoted') this.recordPromotion(d.host, d.event, d.outcome.version);
    }
    for (const host of hosts) this.afterCommit(host);
    this.outbox.enqueue(batch.flatMap((d) => d.outbox));
    for (const d of batch) d.resolve(d.outcome);
  }

  /**
   * A failed commit wrote nothing: put every actor of the batch back to its committed snapshot (re-read
   * from the store when another instance changed it) and apply the same events again.
   */
  private async retryBatch(batch: PendingDispatch[], hosts: Host[], error: unknown, attempt: number): Promise<void> {
    const retry = error instanceof ConflictError && attempt < MAX_COMMIT_ATTEMPTS;
    for (const host of hosts) {
      if (retry) {
        const fresh = await this.deps.store.loadActor(host.kind, host.key);
        host.persisted = fresh?.snapshot ?? null;
        host.revision = fresh?.revision ?? 0;
      }
      this.replaceActor(host);
    }
    if (!retry) {
      this.deps.observer?.effectFailed?.('commit', error);
      for (const d of batch) d.reject(error);
      return;
    }
    for (const d of batch) {
      try {
        this.apply(d.host, d.event, d.create, d.resolve, d.reject);
      } catch (e) {
        d.reject(e);
      }
    }
    await this.flush(attempt + 1);
  }

  private track<T>(promise: Promise<T>): void {
    const tracked = promise.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private recordPromotion(host: Host, event: ModelEvent | TrainingEvent, version: string): void {
    const at = (event as { at: number }).at;
    this.track(
      this.deps.registry.recordPromotion(host.key, version, at, 'promoted').catch((error) => {
        this.deps.observer?.effectFailed?.('registry.recordPromotion', error);
        host.log.error({ err: error }, 'could not record the promotion in the registry');
      }),
    );
  }

  /** After a crash between a commit and the registry write, the registry is brought back in line. */
  private async reconcileRegistry(): Promise<void> {
    for (const host of this.hosts.values()) {
      if (host.kind !== 'model') continue;
      const { state, context } = this.modelView(host);
      if (state === 'rollingBack' || context.productionVersion === null) continue;
      const pointer = await this.deps.registry.production(host.key);
      if (pointer?.version !== context.productionVersion) {
        await this.deps.registry.recordPromotion(host.key, context.productionVersion, this.deps.clock.now(), 'reconciled on start');
      }
    }
  }

  private afterCommit(host: Host): void {
    if (host.kind === 'model') {
      const { state, context } = this.modelView(host);
      if (state === 'rollingBack' && context.rollback) this.runRollback(host, context);
      const deadline =
        state === 'awaitingApproval'
          ? (context.pending?.deadline ?? null)
          : state === 'cooldown' || state === 'rolledBack'
            ? cooldownDeadline(state, context, this.deps.modelPolicy)
            : null;
      this.armTimer(host, deadline, state === 'awaitingApproval' ? 'APPROVAL_EXPIRED' : 'COOLDOWN_ELAPSED');
    } else {
      const { state, context } = this.trainingView(host);
      this.armTimer(host, state === 'paused' ? context.autoResumeAt : null, 'AUTO_RESUME_ELAPSED');
    }
  }

  /** One timer per actor, armed from the deadline in its context: the same after a restart. */
  private armTimer(host: Host, at: number | null, type: 'APPROVAL_EXPIRED' | 'COOLDOWN_ELAPSED' | 'AUTO_RESUME_ELAPSED'): void {
    if (host.timer && host.timer.at === at) return;
    if (host.timer) this.deps.clock.clearTimeout(host.timer.handle);
    host.timer = null;
    if (at === null || this.stopped) return;
    const handle = this.deps.clock.setTimeout(() => {
      host.timer = null;
      const event = { type, at: this.deps.clock.now() };
      this.track(
        this.dispatch(host.kind, host.key, event as ModelEvent | TrainingEvent, undefined).catch((error) => {
          host.log.error({ err: error }, `timer ${type} failed`);
        }),
      );
    }, at - this.deps.clock.now());
    host.timer = { at, handle };
  }

  /** Applies the rollback to the registry (idempotent by id) and reports the result to the actor. */
  private runRollback(host: Host, context: ModelContext): void {
    const plan = context.rollback!;
    if (this.rollbacksRunning.has(plan.rollbackId)) return;
    this.rollbacksRunning.add(plan.rollbackId);
    const work = this.deps.registry
      .rollback({
        rollbackId: plan.rollbackId,
        modelId: host.key,
        fromVersion: plan.fromVersion,
        toVersion: plan.toVersion,
        reason: plan.reason,
        at: this.deps.clock.now(),
      })
      .then(
        () => ({ type: 'ROLLBACK_SUCCEEDED' as const, at: this.deps.clock.now(), rollbackId: plan.rollbackId }),
        (error: unknown) => {
          this.deps.observer?.effectFailed?.('registry.rollback', error);
          return {
            type: 'ROLLBACK_FAILED' as const,
            at: this.deps.clock.now(),
            rollbackId: plan.rollbackId,
            error: error instanceof Error ? error.message : String(error),
          };
        },
      )
      .then((event) => this.dispatch('model', host.key, event, undefined))
      .catch((error) => host.log.error({ err: error }, 'could not report the rollback result'))
      .finally(() => this.rollbacksRunning.delete(plan.rollbackId));
    this.track(work);
  }
}
