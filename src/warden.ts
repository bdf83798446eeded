import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config/schema.ts';
import { ActorRuntime, type Residency, type RuntimeDeps, type RuntimeObserver } from './actors/runtime.ts';
import {
  systemClock,
  type Clock,
  type EventBus,
  type ModelRegistry,
  type StateStore,
} from './actors/ports.ts';
import { MemoryBus } from './embedded/memory-bus.ts';
import { SqliteStore } from './embedded/sqlite-store.ts';
import { createModelMachine } from './machines/model-machine.ts';
import { createTrainingMachine } from './machines/training-machine.ts';
import { modelPolicyFrom } from './machines/model-policy.ts';
import { manualRollbackProblem } from './machines/model-logic.ts';
import type { ModelContext, ModelStateName, Outcome, SprtState } from './machines/model-types.ts';
import type { TrainingContext, TrainingOutcome, TrainingStateName } from './machines/training-types.ts';
import {
  ApproveCommandSchema,
  PauseAcknowledgedSchema,
  PauseCommandSchema,
  PromotionRolledBackSchema,
  ResumeCommandSchema,
  RollbackCommandSchema,
} from './domain/events.ts';
import { isToken, parseModelRef, resolveModelRef } from './domain/model-ref.ts';
import { RecentIds } from './domain/recent-ids.ts';
import { evaluationEvent, promotionEvent, requireToken, type InputKind } from './domain/input-events.ts';
import { parseInput } from './domain/validation.ts';
import {
  ConflictError,
  NoPendingApprovalError,
  UnknownModelError,
  ValidationError,
  WardenError,
  toWardenError,
  type ErrorBody,
} from './domain/errors.ts';
import { silentLogger } from './logger.ts';
import { InputJournal } from './embedded/input-journal.ts';
import { ShadowPolicies } from './lab/shadow.ts';
import type { Decision } from './lab/engine.ts';

/** An input the service took, with the time (ms) its model actor saw it. */
export interface AcceptedInput {
  readonly kind: InputKind;
  readonly at: number;
  readonly payload: unknown;
}

export interface WardenDeps {
  readonly clock?: Clock;
  readonly bus?: EventBus;
  readonly store?: StateStore;
  readonly registry?: ModelRegistry;
  readonly logger?: Logger;
  readonly observer?: RuntimeObserver;
  /** XState inspection events of every actor (the Stately inspector attaches here). */
  readonly inspect?: RuntimeDeps['inspect'];
  /** Called for every rejected input, with the reason code (metrics count them). */
  readonly onRejected?: (kind: string, error: WardenError) => void;
  /**
   * Publishing waits for `startPublishing()`: subscribers that must hear every event (the alert delivery)
   * attach first, so that events left from before a crash are not published to nobody.
   */
  holdPublishing?: boolean;
  /** Called for every input taken from the bus, with the seconds from arrival to its committed result. */
  readonly onProcessed?: (kind: string, seconds: number) => void;
  /** Called for every decision of a shadow policy (metrics count them). */
  readonly onShadowDecision?: (policy: string, decision: Decision) => void;
}

/** How long a read waits for the instance to have read every actor before it is refused (see readable). */
const READ_WAIT_MS = 10_000;

export interface ModelStatus {
  model_id: string;
  config_key: string;
  state: ModelStateName;
  production_version: string | null;
  baseline: { elo: number | null; win_rate: number | null };
  consecutive_regressions: number;
  last_detection: { detection_id: string; severity: string; at: string; reason: string } | null;
  pending_approval: {
    detection_id: string;
    severity: string;
    reason: string;
    held_because: string;
    requested_at: string;
    deadline: string;
    to_version: string;
    evidence: number;
  } | null;
  rolling_back: { rollback_id: string; from_version: string; to_version: string; trigger: string } | null;
  cooldown_until: string | null;
  /**
   * The statistical detector's running test of the production version (null in threshold mode and before
   * its first window with game outcomes): its LLR and Wald bounds, games and windows so far, which test of
   * this version it is, how many the version completed and passed, and the alpha spent.
   */
  statistical_test: {
    format: 'trinomial' | 'pentanomial';
    test: number;
    tests_completed: number;
    tests_passed: number;
    last_passed_at: string | null;
    llr: number | null;
    llr_lower: number | null;
    llr_upper: number | null;
    games: number;
    windows: number;
    alpha: number | null;
    alpha_spent: number | null;
  } | null;
  versions: Array<{
    version: string;
    elo: number | null;
    win_rate: number | null;
    promoted_at: string;
    rolled_back_from: boolean;
  }>;
}

export interface TrainingStatus {
  config_key: string;
  status: TrainingStateName;
  /** Whether a trainer may train this config now. */
  may_train: boolean;
  /**
   * Whether Warden knows this config key (a model uses it, the configuration names it, or it was paused):
   * false for a key it has never seen, so that a trainer can refuse to start on a typo.
   */
  known: boolean;
  reason: string | null;
  by: string | null;
  since: string | null;
  auto_resume_at: string | null;
}

export interface CommandResult<T> {
  outcome: T;
  state: string;
}

/** How many refused inputs Warden remembers so as to count each once (see Warden.refusalsCounted). */
const REFUSALS_REMEMBERED = 10_000;

const iso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

function statisticalTest(t: SprtState): ModelStatus['statistical_test'] {
  const test = t.test ?? 1; // a state persisted before alpha spending was always the first test
  const samples = t.results.reduce((sum, n) => sum + n, 0);
  return {
    format: t.kind,
    test,
    tests_completed: test - 1,
    tests_passed: t.passes ?? 0,
    last_passed_at: iso(t.lastPassedAt),
    llr: t.llr ?? null,
    llr_lower: t.lower ?? null,
    llr_upper: t.upper ?? null,
    games: t.kind === 'pentanomial' ? 2 * samples : samples,
    windows: t.windows,
    alpha: t.alpha ?? null,
    alpha_spent: t.alphaSpent ?? null,
  };
}

function modelStatus(state: ModelStateName, c: ModelContext): ModelStatus {
  return {
    model_id: c.modelId,
    config_key: c.configKey,
    state,
    production_version: c.productionVersion,
    baseline: { elo: c.baseline.elo, win_rate: c.baseline.winRate },
    consecutive_regressions: c.streak,
    last_detection: c.lastDetection && {
      detection_id: c.lastDetection.detectionId,
      severity: c.lastDetection.severity,
      at: iso(c.lastDetection.at)!,
      reason: c.lastDetection.reason,
    },
    pending_approval: c.pending && {
      detection_id: c.pending.detectionId,
      severity: c.pending.severity,
      reason: c.pending.reason,
      held_because: c.pending.heldBecause,
      requested_at: iso(c.pending.requestedAt)!,
      deadline: iso(c.pending.deadline)!,
      to_version: c.pending.toVersion,
      evidence: c.pending.evidence.length,
    },
    rolling_back: c.rollback && {
      rollback_id: c.rollback.rollbackId,
      from_version: c.rollback.fromVersion,
      to_version: c.rollback.toVersion,
      trigger: c.rollback.trigger,
    },
    cooldown_until: state === 'cooldown' || state === 'rolledBack' ? iso(c.cooldownUntil) : null,
    statistical_test: c.sprt && statisticalTest(c.sprt),
    versions: c.lineage.map((e) => ({
      version: e.version,
      elo: e.elo,
      win_rate: e.winRate,
      promoted_at: iso(e.promotedAt)!,
      rolled_back_from: e.rolledBackFrom,
    })),
  };
}

function trainingStatus(state: TrainingStateName, c: TrainingContext): TrainingStatus {
  return {
    config_key: c.configKey,
    status: state,
    may_train: state === 'running',
    known: true,
    reason: c.reason,
    by: c.by,
    since: iso(c.since),
    auto_resume_at: state === 'paused' ? iso(c.autoResumeAt) : null,
  };
}

/**
 * A model that keeps as many inputs as it may while it rolls back answers `busy`: the input was not taken,
 * and a retry later will be (HTTP 503; NATS redelivers it).
 */
function refuseIfBusy(modelId: string, outcome: Outcome): Outcome {
  if (outcome.kind !== 'busy') return outcome;
  throw new WardenError(
    'unavailable',
    `model ${modelId} is rolling back and already keeps ${outcome.waiting} inputs for afterwards; send this one again later`,
    { retryable: true },
  );
}

/**
 * Warden as a library: the factory wires the machines, the runtime and the adapters (embedded by default:
 * an in-process bus and SQLite in config.dataDir). Every method validates its input first; bad input
 * throws a WardenError that names the field, what was expected and what was received, and changes nothing.
 */
export class Warden {
  readonly config: Config;
  readonly bus: EventBus;
  readonly store: StateStore;
  readonly registry: ModelRegistry;
  readonly logger: Logger;
  /** Embedded mode: the input journal the policy lab replays (null in NATS mode or when disabled). */
  readonly journal: InputJournal | null;
  /** The shadow policies of the configuration (null when it names none). */
  readonly shadows: ShadowPolicies | null;
  private readonly runtime: ActorRuntime;
  private readonly clock: Clock;
  private readonly onRejected: WardenDeps['onRejected'];
  /**
   * The inputs whose refusal was counted, by their identity in their log: one that is refused again (a
   * redelivery, a retry after its refusal could not be published, a group of inputs going one at a time
   * after one of them failed) is counted once, as its refusal is published once.
   */
  private readonly refusalsCounted = new RecentIds(REFUSALS_REMEMBERED);
  private readonly onProcessed: WardenDeps['onProcessed'];
  private readonly holdPublishing: boolean;
  private unsubscribers: Array<() => void> = [];
  private readonly inputListeners = new Set<(input: AcceptedInput) => void>();
  private started = false;
  /** When `start` ran, and whether every actor has been read since (see whenLoaded). */
  private startedAt = performance.now();
  private loadedNow = false;
  /** Per model (its subject token): the reads before its last input handed over, while under way (inTurn). */
  private readonly readsUnderWay = new Map<string, Promise<void>>();

  constructor(config: Config, deps: WardenDeps = {}) {
    this.config = config;
    this.logger = deps.logger ?? silentLogger;
    this.clock = deps.clock ?? systemClock;
    const sqlite =
      deps.store && deps.registry
        ? null
        : new SqliteStore(join(config.dataDir, 'warden.db'), {
            durability: config.durability,
            backgroundCheckpoint: {
              onError: (message) =>
                this.logger.warn(
                  { error: message },
                  'background checkpoint of the SQLite log failed; commits checkpoint it themselves past 64 MiB',
                ),
            },
          });
    this.store = deps.store ?? sqlite!;
    this.registry = deps.registry ?? sqlite!;
    this.bus =
      deps.bus ??
      new MemoryBus((error, message) =>
        this.logger.error({ err: error, subject: message.subject }, 'bus handler failed'),
      );
    this.journal =
      sqlite && config.journal.enabled
        ? new InputJournal(join(config.dataDir, 'warden.db'), config.journal, () => this.clock.now())
        : null;
    this.shadows =
      config.shadowPolicies.length > 0
        ? new ShadowPolicies(config, {
            bus: this.bus,
            clock: this.clock,
            logger: this.logger,
            prefix: config.nats.prefix,
            liveSnapshot: (modelId) => this.runtime.currentSnapshot('model', modelId),
            onDecision: deps.onShadowDecision,
          })
        : null;
    this.onRejected = deps.onRejected;
    this.onProcessed = deps.onProcessed;
    this.holdPublishing = deps.holdPublishing ?? false;
    const modelPolicy = modelPolicyFrom(config);
    this.runtime = new ActorRuntime({
      modelMachine: createModelMachine(modelPolicy),
      trainingMachine: createTrainingMachine({
        autoResumeMs:
          config.training.autoResumeSeconds === null ? null : config.training.autoResumeSeconds * 1000,
      }),
      modelPolicy,
      store: this.store,
      registry: this.registry,
      bus: this.bus,
      clock: this.clock,
      logger: this.logger,
      prefix: config.nats.prefix,
      observer: deps.observer,
      inspect: deps.inspect,
      passivateAfterMs: config.passivateAfterSeconds === null ? null : config.passivateAfterSeconds * 1000,
    });
  }

  get prefix(): string {
    return this.config.nats.prefix;
  }

  async start(): Promise<void> {
    if (this.started) return;
    await this.runtime.start();
    const p = this.prefix;
    this.unsubscribers.push(
      // The training-config actors learn of rollbacks from the rollback event itself, like any consumer;
      // durable: the event is delivered only once the pause is committed (non-negotiable 3).
      this.bus.subscribe(`${p}.evt.promotion_rolled_back.*`, (m) => this.onRolledBack(m.data), {
        durable: true,
      }),
      this.bus.subscribe(`${p}.int.pause_acknowledged.*`, (m) => this.onPauseAcknowledged(m.data), {
        durable: true,
      }),
      this.bus.subscribe(`${p}.in.promotion.*`, (m) =>
        this.ingest(m.subject, m.data, m.raw, m.position, m.id).then(() => undefined),
      ),
      this.bus.subscribe(`${p}.in.evaluation.*`, (m) =>
        this.ingest(m.subject, m.data, m.raw, m.position, m.id).then(() => undefined),
      ),
    );
    if (!this.holdPublishing) this.runtime.startPublishing();
    this.started = true;
    this.startedAt = performance.now();
    void this.whenLoaded().then(() => {
      this.loadedNow = true;
      if (this.store.whenLoaded)
        this.logger.info(
          {
            ms: Math.round(performance.now() - this.startedAt),
            timers: this.runtime.residency().timersIndexed,
          },
          'read every actor; lists, counts and timers are complete',
        );
    });
    const resident = this.runtime.residency();
    this.logger.info(
      {
        residentModels: resident.models,
        residentTrainings: resident.trainings,
        timers: resident.timersIndexed,
      },
      'Warden started',
    );
  }

  /**
   * Stops intake, lets in-flight work and publications finish, then closes the bus and the store. `onStep`
   * hears each step as it begins (a test's budget then says where a stop hangs).
   */
  async stop(onStep?: (step: string) => void): Promise<void> {
    for (const unsubscribe of this.unsubscribers) unsubscribe();
    this.unsubscribers = [];
    onStep?.('stopping the runtime');
    await this.runtime.stop();
    onStep?.('stopping the shadow policies');
    await this.shadows?.stop();
    this.journal?.close();
    onStep?.('closing the bus');
    await this.bus.close();
    onStep?.('closing the store');
    await this.store.close();
    this.started = false;
    this.logger.info('Warden stopped');
  }

  /** Starts publishing committed events (only needed with `holdPublishing`; idempotent). */
  startPublishing(): void {
    this.runtime.startPublishing();
  }

  /** Actors resident now, passivated since the start, their timers armed, and those of the others indexed. */
  residency(): Residency {
    return this.runtime.residency();
  }

  /** Resolves when every input so far has been processed, committed, published and delivered. */
  idle(): Promise<void> {
    return this.runtime.idle();
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs

  /** `position`: the input's place in its log (NATS mode), committed with the model's state. */
  async promote(
    input: unknown,
    position?: number,
  ): Promise<CommandResult<Outcome> & { model_id: string; version: string }> {
    const read = this.prefetchModels(input);
    if (read) await read;
    const at = this.clock.now();
    const p = promotionEvent(input, at, (id) => this.runtime.hasModel(id), this.config.models);
    const outcome = await this.runtime.dispatchModel(
      p.modelId,
      p.event,
      { configKey: p.configKey },
      position,
    );
    const result = {
      model_id: p.modelId,
      version: p.version,
      outcome: refuseIfBusy(p.modelId, outcome),
      state: this.runtime.modelState(p.modelId)!,
    };
    this.accepted('promotion', at, input, p.modelId);
    return result;
  }

  async evaluate(input: unknown, position?: number): Promise<CommandResult<Outcome> & { model_id: string }> {
    const read = this.prefetchModels(input);
    if (read) await read;
    const at = this.clock.now();
    // An unknown model is refused by the runtime itself (UnknownModelError): no actor is created for it.
    const e = evaluationEvent(input, at, (id) => this.runtime.hasModel(id));
    const outcome = await this.runtime.dispatchModel(e.modelId, e.event, undefined, position);
    const result = {
      model_id: e.modelId,
      outcome: refuseIfBusy(e.modelId, outcome),
      state: this.runtime.modelState(e.modelId)!,
    };
    this.accepted('evaluation', at, input, e.modelId);
    return result;
  }

  /**
   * While the store reads its records in the background (NATS mode's start, see StateStore.whenLoaded):
   * reads the models an input or a command names first, under every id its model reference can mean (see
   * resolveModelRef), so that the reference is read as it would be once every model is known. Null when
   * nothing is to be read: no wait, and inputs handed over together stay together.
   */
  private prefetchModels(input: unknown, ...more: string[]): Promise<void> | null {
    if (this.loadedNow) return null; // the usual case: nothing to read, and nothing built per input
    const fields = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
    const ref = fields.model_id;
    const version = typeof fields.version === 'string' ? fields.version : undefined;
    const ids = new Set(more);
    if (typeof ref === 'string') {
      ids.add(ref);
      ids.add(parseModelRef(ref).modelId);
      if (version !== undefined) ids.add(parseModelRef(ref, version).modelId);
    }
    for (const id of [...ids]) if (!isToken(id)) ids.delete(id);
    return ids.size > 0 ? this.runtime.prefetch('model', [...ids]) : null;
  }

  /**
   * `read`, then the read of the model's input handed over before it, if that one is still under way: the
   * intake hands a group of one model's inputs over in one turn, and the runtime applies them in the order
   * they reach it, but their reads differ (a promotion also reads the id its version makes), so the later
   * input would otherwise overtake the earlier. A read that fails fails the inputs behind it too, as a
   * failed step does (ActorRuntime.dropUncommitted); the intake takes them again one at a time, in order.
   */
  private inTurn(token: string, read: Promise<void> | null): Promise<void> | null {
    const before = this.readsUnderWay.get(token);
    if (!before && !read) return null;
    const turn = before && read ? Promise.all([before, read]).then(() => undefined) : (before ?? read)!;
    this.readsUnderWay.set(token, turn);
    const done = () => {
      if (this.readsUnderWay.get(token) === turn) this.readsUnderWay.delete(token);
    };
    turn.then(done, done);
    return turn;
  }

  /** The same for a training config (see prefetchModels). */
  private prefetchTraining(configKey: string): Promise<void> | null {
    return !this.loadedNow && isToken(configKey) ? this.runtime.prefetch('training', [configKey]) : null;
  }

  /**
   * Resolves once lists, counts and single reads of any actor are complete: at once in the embedded mode;
   * in NATS mode once the instance has read every actor's value, which it does after it starts taking
   * inputs (about 30 s at a million models). The HTTP API and the NATS commands wait for it before they
   * answer a read.
   */
  whenLoaded(): Promise<void> {
    return this.runtime.whenLoaded();
  }

  /**
   * What a read awaits (the HTTP API, the NATS commands): `whenLoaded`, for at most `maxWaitMs`; a read that
   * would wait longer is refused as unavailable (retryable), saying why, rather than left hanging.
   */
  async readable(maxWaitMs = READ_WAIT_MS): Promise<void> {
    if (this.loadedNow) return;
    let timer: unknown;
    const late = new Promise<boolean>((resolve) => {
      timer = this.clock.setTimeout(() => resolve(false), maxWaitMs);
    });
    const loaded = await Promise.race([this.whenLoaded().then(() => true), late]);
    this.clock.clearTimeout(timer);
    if (loaded) return;
    throw new WardenError(
      'unavailable',
      `this instance started ${Math.round((performance.now() - this.startedAt) / 1000)} s ago and is still reading every model's stored state (reads answer once it has; inputs and commands are taken meanwhile): try again in a few seconds`,
      { retryable: true },
    );
  }

  /**
   * What a read of one model (`status(modelId)`) awaits: that model and its training config
   * read, while the instance still reads every actor; no wait for the others.
   */
  async readableModel(modelId: string): Promise<void> {
    if (this.loadedNow) return;
    await this.prefetchModels({ model_id: modelId });
    const model = this.runtime.model(modelId);
    if (model) await this.prefetchTraining(model.context.configKey);
  }

  /**
   * What a read of one training config (`trainingStatus`, the trainer's "may I train?") awaits: that config
   * and the model of the same id read; and every actor read (see readable) only when neither says whether
   * the key is a config at all (it may be some other model's).
   */
  async readableTraining(configKey: string): Promise<void> {
    if (this.loadedNow) return;
    await this.prefetchTraining(configKey);
    await this.prefetchModels({ model_id: configKey });
    if (this.runtime.training(configKey) || this.isConfiguredOrOwnKey(configKey)) return;
    await this.readable();
  }

  /** Every input the service took (not refused as invalid, unknown or busy) goes to the listeners. */
  private accepted(kind: InputKind, at: number, payload: unknown, modelId: string): void {
    this.journal?.append(kind, at, payload);
    this.shadows?.input(kind, at, payload, modelId);
    for (const listener of this.inputListeners) {
      try {
        listener({ kind, at, payload });
      } catch (error) {
        this.logger.error({ err: error }, 'an accepted-input listener failed');
      }
    }
  }

  /**
   * Hears every accepted input with the time the machines saw it (the input journal, shadow policies).
   * Listeners run synchronously and must not throw; returns the unsubscribe.
   */
  onInput(listener: (input: AcceptedInput) => void): () => void {
    this.inputListeners.add(listener);
    return () => this.inputListeners.delete(listener);
  }

  /**
   * An input that arrived on the bus (or NATS): the subject's last token must name the same model as the
   * payload. Bad input is published on `<prefix>.evt.rejected.<kind>` so the producer can see why.
   */
  async ingest(
    subject: string,
    data: unknown,
    raw?: string,
    position?: number,
    /** The input's identity in its log (BusMessage.id): its refusal is published once, however often it comes. */
    id?: string,
  ): Promise<{ ok: true; result: unknown } | { ok: false; error: ErrorBody }> {
    const kind = subject.split('.').at(-2) ?? 'unknown';
    const started = performance.now();
    try {
      if (data === undefined) {
        throw new ValidationError(kind, [
          `(root): expected a JSON object, received ${raw === undefined ? 'nothing' : `text that is not JSON`}`,
        ]);
      }
      const token = subject.split('.').at(-1)!;
      const read = this.inTurn(token, this.prefetchModels(data, token));
      if (read) await read;
      const modelRef = (data as { model_id?: unknown })?.model_id;
      if (typeof modelRef === 'string') {
        const version = (data as { version?: unknown }).version;
        const { modelId } = this.resolveRef(modelRef, typeof version === 'string' ? version : undefined);
        if (modelId !== token) {
          throw new ValidationError(kind, [
            `model_id: expected "${token}" (the subject's last token), received "${modelId}"`,
          ]);
        }
      }
      const result =
        kind === 'promotion' ? await this.promote(data, position) : await this.evaluate(data, position);
      this.onProcessed?.(kind, (performance.now() - started) / 1000);
      return { ok: true, result };
    } catch (caught) {
      const error = toWardenError(caught);
      if (error.code === 'internal' || error.code === 'unavailable') throw error;
      if (id === undefined || this.refusalsCounted.add(id)) this.onRejected?.(kind, error);
      this.logger.warn(
        { subject, code: error.code, issues: error.issues },
        `rejected ${kind}: ${error.message}`,
      );
      const text = raw ?? JSON.stringify(data) ?? '';
      await this.bus.publish(
        `${this.prefix}.evt.rejected.${kind}`,
        { subject, error: error.toJSON(), raw: text.length > 1024 ? `${text.slice(0, 1024)}…` : text },
        id === undefined ? undefined : { msgId: `rejected:${id}` },
      );
      return { ok: false, error: error.toJSON() };
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Operator commands

  /** The one reading of a model reference (src/domain/model-ref.ts): a known model id wins. */
  private resolveRef(ref: string, version: string | undefined): { modelId: string; version?: string } {
    return resolveModelRef(ref, version, (id) => this.runtime.hasModel(id));
  }

  /**
   * Commands and paths name a model, never a version: a reference that reads as a known model plus a
   * version (`hex8_2p_v42` when `hex8_2p` is known and `hex8_2p_v42` is not) is refused as such.
   */
  private requireModel(modelId: string): { state: ModelStateName; context: ModelContext } {
    requireToken(modelId, 'model_id');
    const model = this.runtime.model(modelId);
    if (model) return model;
    const ref = this.resolveRef(modelId, undefined);
    if (ref.version !== undefined && this.runtime.hasModel(ref.modelId)) {
      throw new ValidationError('model_id', [
        `model_id: expected a model id, received "${modelId}", which reads as model "${ref.modelId}" version "${ref.version}" (name the model "${ref.modelId}"; commands choose versions with their own fields)`,
      ]);
    }
    throw new UnknownModelError(modelId);
  }

  async approve(modelId: string, body: unknown): Promise<CommandResult<Outcome>> {
    const read = this.prefetchModels({ model_id: modelId });
    if (read) await read;
    const command = parseInput(ApproveCommandSchema, body, 'approval');
    const model = this.requireModel(modelId);
    if (model.state !== 'awaitingApproval') throw new NoPendingApprovalError(modelId, model.state);
    const outcome = await this.runtime.dispatchModel(modelId, {
      type: 'APPROVE',
      at: this.clock.now(),
      by: command.by,
      note: command.note,
    });
    const state = this.runtime.model(modelId)!.state;
    // Its deadline came first (a timer that was due acts before the command: ActorRuntime.fireIfDue).
    if (outcome.kind === 'stale') throw new NoPendingApprovalError(modelId, state);
    return { outcome, state };
  }

  async reject(modelId: string, body: unknown): Promise<CommandResult<Outcome>> {
    const read = this.prefetchModels({ model_id: modelId });
    if (read) await read;
    const command = parseInput(ApproveCommandSchema, body, 'rejection');
    const model = this.requireModel(modelId);
    if (model.state !== 'awaitingApproval') throw new NoPendingApprovalError(modelId, model.state);
    const outcome = await this.runtime.dispatchModel(modelId, {
      type: 'REJECT',
      at: this.clock.now(),
      by: command.by,
      note: command.note,
    });
    const state = this.runtime.model(modelId)!.state;
    // Its deadline came first (a timer that was due acts before the command: ActorRuntime.fireIfDue).
    if (outcome.kind === 'stale') throw new NoPendingApprovalError(modelId, state);
    return { outcome, state };
  }

  async rollback(modelId: string, body: unknown): Promise<CommandResult<Outcome>> {
    const read = this.prefetchModels({ model_id: modelId });
    if (read) await read;
    const command = parseInput(RollbackCommandSchema, body, 'rollback command');
    const model = this.requireModel(modelId);
    if (model.state === 'rollingBack')
      throw new ConflictError(
        `model ${modelId} is already rolling back (${model.context.rollback?.rollbackId})`,
      );
    const problem = manualRollbackProblem(model.context, command.to_version);
    if (problem !== null) {
      throw new WardenError(
        command.to_version !== undefined ? 'unknown_version' : 'conflict',
        `cannot roll back ${modelId}: ${problem}`,
      );
    }
    const outcome = await this.runtime.dispatchModel(modelId, {
      type: 'ROLLBACK_REQUESTED',
      at: this.clock.now(),
      by: command.by,
      reason: command.reason,
      toVersion: command.to_version,
    });
    return { outcome, state: this.runtime.model(modelId)!.state };
  }

  async pause(configKey: string, body: unknown): Promise<CommandResult<TrainingOutcome>> {
    const read = this.prefetchTraining(configKey);
    if (read) await read;
    const command = parseInput(PauseCommandSchema, body, 'pause command');
    requireToken(configKey, 'config_key');
    const outcome = await this.runtime.dispatchTraining(configKey, {
      type: 'PAUSE',
      at: this.clock.now(),
      by: command.by,
      reason: command.reason,
    });
    return { outcome, state: this.runtime.training(configKey)!.state };
  }

  async resume(configKey: string, body: unknown): Promise<CommandResult<TrainingOutcome>> {
    const read = this.prefetchTraining(configKey);
    if (read) await read;
    const command = parseInput(ResumeCommandSchema, body, 'resume command');
    requireToken(configKey, 'config_key');
    const training = this.runtime.training(configKey);
    if (!training || training.state !== 'paused')
      throw new ConflictError(`training config ${configKey} is not paused`);
    const outcome = await this.runtime.dispatchTraining(configKey, {
      type: 'RESUME',
      at: this.clock.now(),
      by: command.by,
      note: command.note,
    });
    // Its auto-resume came first (a timer that was due acts before the command: ActorRuntime.fireIfDue).
    if (outcome.kind === 'not_paused') throw new ConflictError(`training config ${configKey} is not paused`);
    return { outcome, state: this.runtime.training(configKey)!.state };
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  /** A model's state alone, without building its view (null: no such model); the NATS intake asks per input. */
  modelState(modelId: string): ModelStateName | null {
    return this.runtime.modelState(modelId);
  }

  status(modelId?: string): { models: ModelStatus[]; training: TrainingStatus[] } {
    if (modelId !== undefined) {
      const model = this.requireModel(modelId);
      const training = this.runtime.training(model.context.configKey);
      return {
        models: [modelStatus(model.state, model.context)],
        training: training ? [trainingStatus(training.state, training.context)] : [],
      };
    }
    return {
      models: this.runtime
        .models()
        .map((m) => modelStatus(m.state, m.context))
        .sort((a, b) => a.model_id.localeCompare(b.model_id)),
      training: this.runtime
        .trainings()
        .map((t) => trainingStatus(t.state, t.context))
        .sort((a, b) => a.config_key.localeCompare(b.config_key)),
    };
  }

  /** Whether every actor's stored state has been read since the start (see whenLoaded). */
  stateRead(): boolean {
    return this.loadedNow;
  }

  /**
   * How many models are in each state, how many training configs are paused, and how many committed events
   * wait to be published here (metrics), cheaply.
   */
  stateCounts(): { models: Map<string, number>; pausedConfigs: number; unpublishedEvents?: number } {
    return {
      models: this.runtime.stateCounts('model'),
      pausedConfigs: this.runtime.stateCounts('training').get('paused') ?? 0,
      unpublishedEvents: this.runtime.unpublishedEvents(),
    };
  }

  /** "May I train config X?" A config Warden has never paused is running; `known` tells a typo apart. */
  trainingStatus(configKey: string): TrainingStatus {
    requireToken(configKey, 'config_key');
    const training = this.runtime.training(configKey);
    return training
      ? trainingStatus(training.state, training.context)
      : {
          config_key: configKey,
          status: 'running',
          may_train: true,
          known: this.isKnownConfig(configKey),
          reason: null,
          by: null,
          since: null,
          auto_resume_at: null,
        };
  }

  /**
   * Whether some model trains under this config key. Trainers ask often: the usual case (a config named
   * after its model, the default) is one lookup; any other key reads every model once, at the first such
   * question, and is a lookup in the runtime's set of config keys from then on.
   */
  private isKnownConfig(configKey: string): boolean {
    return this.isConfiguredOrOwnKey(configKey) || this.runtime.hasModelWithConfigKey(configKey);
  }

  /** The cheap part of isKnownConfig: configured for a model, or the config key of the model of that id. */
  private isConfiguredOrOwnKey(configKey: string): boolean {
    if (Object.entries(this.config.models).some(([id, m]) => (m.configKey ?? id) === configKey)) return true;
    return this.runtime.model(configKey)?.context.configKey === configKey;
  }

  async history(
    query: { model_id?: string; limit?: number } = {},
  ): Promise<{ rollbacks: Array<Record<string, unknown>> }> {
    if (query.model_id !== undefined) requireToken(query.model_id, 'model_id');
    const limit = query.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new ValidationError('history query', [
        `limit: expected an integer from 1 to 1000, received ${limit}`,
      ]);
    }
    // The fleet's history looks at every model; one model's, the store reads for itself (see readable).
    if (query.model_id === undefined) await this.readable();
    const records = await this.store.history({ modelId: query.model_id, limit });
    return { rollbacks: records.map((r) => ({ outcome: r.kind, ...r.payload })) };
  }

  // ---------------------------------------------------------------------------------------------
  // Actor-to-actor messages over the bus

  private async onRolledBack(data: unknown): Promise<void> {
    const event = PromotionRolledBackSchema.parse(data);
    const read = this.prefetchTraining(event.config_key);
    if (read) await read;
    await this.runtime.dispatchTraining(event.config_key, {
      type: 'PAUSE',
      at: this.clock.now(),
      by: event.by,
      reason: `rollback ${event.rollback_id} of ${event.model_id} ${event.from_version} -> ${event.to_version} (${event.triggered_by}): ${event.reason}`,
      modelId: event.model_id,
      rollbackId: event.rollback_id,
      fromVersion: event.from_version,
      toVersion: event.to_version,
    });
  }

  private async onPauseAcknowledged(data: unknown): Promise<void> {
    const ack = PauseAcknowledgedSchema.parse(data);
    const read = this.prefetchModels(ack);
    if (read) await read;
    if (!this.runtime.model(ack.model_id)) return;
    await this.runtime.dispatchModel(ack.model_id, {
      type: 'PAUSE_ACKNOWLEDGED',
      at: this.clock.now(),
      rollbackId: ack.rollback_id,
    });
  }
}

export async function createWarden(config: Config, deps: WardenDeps = {}): Promise<Warden> {
  const warden = new Warden(config, deps);
  await warden.start();
  return warden;
}
