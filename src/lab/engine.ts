/**
 * The policy lab's engine: the service's own model and training-config machines (src/machines, built from
 * a configuration exactly as src/warden.ts builds them) driven over recorded inputs on a virtual clock, each
 * stepped by its own definition without XState's interpreter (src/machines/flat-step.ts: a replay's millions
 * of events cost several times less so).
 * Effects are simulated in memory: the registry applies a rollback at once, the training config hears of
 * it at once, and nothing outside this object is touched. Timers (approval deadlines, cooldowns,
 * auto-resume) fire on the virtual clock, in deadline order, before the first input at or after them.
 *
 * One mechanism for the three users: `warden replay` and the HTTP replay job feed it a whole history;
 * shadow policies feed it the live inputs one by one, beside the live service.
 */
import { initialTransition } from 'xstate';
import type { Config } from '../config/schema.ts';
import { createModelMachine, type ModelMachine } from '../machines/model-machine.ts';
import { createTrainingMachine, type TrainingMachine } from '../machines/training-machine.ts';
import { modelPolicyFrom, type ModelPolicy } from '../machines/model-policy.ts';
import { cooldownDeadline, deferredOf } from '../machines/model-logic.ts';
import {
  MODEL_STATES,
  type ModelContext,
  type ModelEvent,
  type ModelStateName,
  type Outcome,
} from '../machines/model-types.ts';
import type { TrainingEvent, TrainingStateName } from '../machines/training-types.ts';
import type { OutputEvent } from '../domain/events.ts';
import type { Severity } from '../policy/severity.ts';
import { evaluationEvent, promotionEvent } from '../domain/input-events.ts';
import { lookupTable, resolveModelRef } from '../domain/model-ref.ts';
import { ValidationError, WardenError } from '../domain/errors.ts';
import { migrateSnapshot, type StoredSnapshot } from '../machines/migrations.ts';
import { flatStepper, type FlatSnapshot, type FlatStep } from '../machines/flat-step.ts';
import type { TrainingContext } from '../machines/training-types.ts';

/** One recorded input: its kind, the time its model saw it (ms), its payload and where it came from. */
export interface RecordedInput {
  readonly kind: unknown;
  readonly at: number;
  readonly payload: unknown;
  /** Its line in a file, or its sequence number in the journal or the stream. */
  readonly line: number;
}

/** A line that could not be replayed as it was (skipped), or was replayed with a correction (warning). */
export interface ReplayIssue {
  readonly line: number;
  readonly level: 'skipped' | 'warning';
  readonly problem: string;
}

/** What a policy decided, as the live service would have published it. */
export type Decision =
  | {
      readonly type: 'rollback';
      readonly at: number;
      readonly modelId: string;
      readonly configKey: string;
      readonly rollbackId: string;
      readonly fromVersion: string;
      readonly toVersion: string;
      readonly trigger: string;
      readonly detectionId: string | null;
      /** From the first evaluation judged a regression (since the last clean one) to this rollback. */
      readonly msFromFirstBadEvaluation: number | null;
    }
  | {
      readonly type: 'approval_requested';
      readonly at: number;
      readonly modelId: string;
      readonly detectionId: string;
      readonly severity: Severity;
      readonly heldBecause: string;
      readonly toVersion: string | null;
      readonly deadline: number;
    }
  | {
      readonly type: 'regression';
      readonly at: number;
      readonly modelId: string;
      readonly version: string | null;
      readonly severity: Severity;
      readonly decision: 'watch' | 'rollback' | 'await_approval';
    }
  | {
      readonly type: 'training_paused';
      readonly at: number;
      readonly configKey: string;
      readonly modelId: string | null;
    }
  | { readonly type: 'training_resumed'; readonly at: number; readonly configKey: string };

export type DecisionListener = (decision: Decision) => void;

/** One model's decisions over a replay. */
export interface ModelDecisions {
  readonly modelId: string;
  readonly configKey: string;
  inputs: number;
  state: ModelStateName;
  productionVersion: string | null;
  readonly rollbacks: Array<Extract<Decision, { type: 'rollback' }>>;
  readonly approvals: Array<Extract<Decision, { type: 'approval_requested' }>>;
  regressions: number;
}

export interface EngineSummary {
  readonly from: number | null;
  readonly until: number | null;
  readonly inputs: number;
  readonly applied: number;
  readonly models: ModelDecisions[];
  /** Per training config: hours paused between the first input and `until`. */
  readonly pausedHours: Record<string, number>;
}

/**
 * One shard of a parallel replay (src/lab/parallel.ts): of `count` engines fed the same whole history,
 * this one runs the machines of the training configs whose key hashes to `index` (a config's models and its
 * training actor are the only machines that act on one another), and reports the problems of lines that
 * belong to no model (bad kind, bad timestamp, failed validation, unknown model) only when `index` is 0.
 * Every shard still keeps the whole history's clock and its set of known models, so each answers exactly as
 * the sequential engine would for the models it runs.
 */
export interface EngineShard {
  readonly index: number;
  readonly count: number;
}

/** The shard a training config's key belongs to, of `count` (FNV-1a: stable across processes). */
export function shardOf(configKey: string, count: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < configKey.length; i++) {
    hash ^= configKey.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % count;
}

type TimerType = 'APPROVAL_EXPIRED' | 'COOLDOWN_ELAPSED' | 'AUTO_RESUME_ELAPSED';

interface ModelHost {
  readonly kind: 'model';
  readonly key: string;
  snapshot: FlatSnapshot<ModelStateName, ModelContext>;
  readonly decisions: ModelDecisions;
  firstBadAt: number | null;
  timerAt: number | null;
  timerType: TimerType;
  timerGen: number;
}

interface TrainingHost {
  readonly kind: 'training';
  readonly key: string;
  snapshot: FlatSnapshot<TrainingStateName, TrainingContext>;
  pausedSince: number | null;
  pausedMs: number;
  timerAt: number | null;
  timerType: TimerType;
  timerGen: number;
}

type Host = ModelHost | TrainingHost;

interface TimerEntry {
  readonly at: number;
  readonly seq: number;
  readonly host: Host;
  readonly gen: number;
}

/** A small binary heap of timers by deadline (then by arming order): replay fires them in that order. */
class TimerHeap {
  private items: TimerEntry[] = [];
  get size(): number {
    return this.items.length;
  }
  peek(): TimerEntry | undefined {
    return this.items[0];
  }
  private less(a: TimerEntry, b: TimerEntry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
  push(entry: TimerEntry): void {
    const items = this.items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }
  /** Keeps only the entries `live` accepts (a sorted array is a heap). */
  compact(live: (entry: TimerEntry) => boolean): void {
    this.items = this.items.filter(live).sort((a, b) => (this.less(a, b) ? -1 : 1));
  }
  pop(): TimerEntry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.less(items[l]!, items[m]!)) m = l;
        if (r < items.length && this.less(items[r]!, items[m]!)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top;
  }
}

type Work =
  | { readonly host: ModelHost; readonly event: ModelEvent }
  | { readonly host: TrainingHost; readonly event: TrainingEvent };

/** A machine's initial state for `input`, as XState makes it (once per model or config). */
function initialOf<TState extends string, TContext>(
  machine: ModelMachine | TrainingMachine,
  input: unknown,
): FlatSnapshot<TState, TContext> {
  const [snapshot] = initialTransition(machine as ModelMachine, input as never);
  return { value: snapshot.value as TState, context: snapshot.context as TContext };
}

/** One step, or an internal error that names the machine and the event (the line is then reported). */
function stepOrFail<T>(machine: 'model' | 'training', step: () => T, event: { type: string }): T {
  try {
    return step();
  } catch (error) {
    throw new WardenError('internal', `the ${machine} machine failed on ${event.type}: ${String(error)}`);
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/**
 * Runs one configuration's policy over inputs fed in time order. Pure in the sense that matters: the
 * same configuration and the same inputs give the same decisions, and nothing outside is read or changed.
 */
export class PolicyEngine {
  private readonly modelMachine: ModelMachine;
  private readonly trainingMachine: TrainingMachine;
  private readonly policy: ModelPolicy;
  /** The machines' own transitions, stepped without the interpreter (src/machines/flat-step.ts). */
  private readonly stepModel: FlatStep<ModelStateName, ModelContext, ModelEvent, OutputEvent>;
  private readonly stepTraining: FlatStep<TrainingStateName, TrainingContext, TrainingEvent, OutputEvent>;
  private readonly modelHosts = new Map<string, ModelHost>();
  private readonly trainingHosts = new Map<string, TrainingHost>();
  private readonly timers = new TimerHeap();
  private timerSeq = 0;
  private now = Number.NEGATIVE_INFINITY;
  private first: number | null = null;
  private inputs = 0;
  private applied = 0;
  private readonly queue: Work[] = [];
  /** Every model of the history so far and its config key (all of them, in a shard too). */
  private readonly modelKeys = new Map<string, string>();
  private readonly known = (id: string): boolean => this.modelKeys.has(id);
  /** This engine's shard (index, count), or null: it runs every model. */
  private readonly shard: EngineShard | null;
  private readonly shards = new Map<string, number>();

  constructor(
    private readonly config: Config,
    private readonly onDecision: DecisionListener = () => undefined,
    shard: EngineShard | null = null,
  ) {
    this.shard = shard !== null && shard.count > 1 ? shard : null;
    this.policy = modelPolicyFrom(config);
    this.modelMachine = createModelMachine(this.policy);
    this.trainingMachine = createTrainingMachine({
      autoResumeMs:
        config.training.autoResumeSeconds === null ? null : config.training.autoResumeSeconds * 1000,
    });
    this.stepModel = flatStepper(this.modelMachine);
    this.stepTraining = flatStepper(this.trainingMachine);
  }

  /** The virtual clock: the time of the last input or timer (ms). */
  time(): number {
    return this.now;
  }

  /** Timer entries held, stale ones included (bounded: see `arm`). */
  timerEntries(): number {
    return this.timers.size;
  }

  /** The earliest deadline still armed (ms), or null. */
  nextDeadline(): number | null {
    for (;;) {
      const top = this.timers.peek();
      if (!top) return null;
      if (top.gen === top.host.timerGen) return top.at;
      this.timers.pop();
    }
  }

  /**
   * Applies one recorded input at its time, after every timer due by then. Returns its problem, if it
   * had one (it is then skipped, or applied with a correction); never throws for bad input.
   */
  feed(input: RecordedInput): ReplayIssue | null {
    this.inputs++;
    const { kind, line } = input;
    // Problems of lines that belong to no model are reported by one shard only (the first).
    const global = this.shard === null || this.shard.index === 0;
    if (kind !== 'promotion' && kind !== 'evaluation') {
      if (!global) return null;
      return {
        line,
        level: 'skipped',
        problem: `kind: expected "promotion" or "evaluation", received ${describe(kind)}`,
      };
    }
    let at = input.at;
    if (!Number.isFinite(at)) {
      if (!global) return null;
      return { line, level: 'skipped', problem: `timestamp: expected a time, received ${describe(at)}` };
    }
    const clamped = at < this.now;
    const previous = this.now;
    if (clamped) at = this.now;
    this.first ??= at;
    let mine = global;
    try {
      // Inside: a timer whose step fails fails this line (reported), never the whole replay.
      this.advance(at);
      if (kind === 'promotion') {
        const p = promotionEvent(input.payload, at, this.known, this.config.models);
        const configKey = this.modelKeys.get(p.modelId) ?? p.configKey;
        if (this.shard !== null) {
          mine = this.shardOfKey(configKey) === this.shard.index;
          if (!mine) {
            // Another shard runs this model: only its existence matters here (model references).
            if (!this.modelKeys.has(p.modelId)) this.modelKeys.set(p.modelId, configKey);
            return null;
          }
        }
        let host = this.modelHosts.get(p.modelId);
        if (!host) host = this.createModel(p.modelId, p.configKey);
        host.decisions.inputs++;
        this.run({ host, event: p.event });
      } else {
        if (this.shard !== null) {
          // Which model this evaluation is for, read as evaluationEvent reads it, without validating it:
          // a known model's shard validates and runs it; anything else is the first shard's to report.
          const owner = this.ownerOf(input.payload);
          mine = owner === null ? global : owner === this.shard.index;
          if (!mine) return null;
        }
        const e = evaluationEvent(input.payload, at, this.known);
        const host = this.modelHosts.get(e.modelId);
        if (!host) {
          return {
            line,
            level: 'skipped',
            problem: `model_id: expected a model promoted earlier in this history, received "${e.modelId}" (an unknown model)`,
          };
        }
        host.decisions.inputs++;
        this.run({ host, event: e.event });
      }
    } catch (error) {
      if (!mine) return null;
      if (error instanceof ValidationError) {
        return { line, level: 'skipped', problem: (error.issues ?? [error.message]).join('; ') };
      }
      const message = error instanceof Error ? error.message : String(error);
      return { line, level: 'skipped', problem: `could not be applied: ${message}` };
    }
    this.applied++;
    if (!clamped) return null;
    return {
      line,
      level: 'warning',
      problem: `timestamp: expected a time at or after the previous input's (${new Date(previous).toISOString()}), received ${new Date(input.at).toISOString()}; applied at the previous input's time`,
    };
  }

  /** The shard of the known model an evaluation payload names, or null (not a known model, or unreadable). */
  private ownerOf(payload: unknown): number | null {
    if (typeof payload !== 'object' || payload === null) return null;
    const { model_id: ref, version } = payload as { model_id?: unknown; version?: unknown };
    if (typeof ref !== 'string' || (version !== undefined && typeof version !== 'string')) return null;
    const configKey = this.modelKeys.get(resolveModelRef(ref, version, this.known).modelId);
    return configKey === undefined ? null : this.shardOfKey(configKey);
  }

  /** `shardOf` a config key, hashed once per key (it is asked on every line of the history). */
  private shardOfKey(configKey: string): number {
    let shard = this.shards.get(configKey);
    if (shard === undefined) {
      shard = shardOf(configKey, this.shard!.count);
      this.shards.set(configKey, shard);
    }
    return shard;
  }

  /** Fires every timer due at or before `to`, in deadline order, and moves the clock there. */
  advance(to: number): void {
    for (;;) {
      const top = this.timers.peek();
      if (!top || top.at > to) break;
      this.timers.pop();
      const host = top.host;
      if (top.gen !== host.timerGen) continue;
      host.timerAt = null;
      if (top.at > this.now) this.now = top.at;
      const event = { type: host.timerType, at: top.at, deadline: top.at };
      if (host.kind === 'model') this.run({ host, event: event as ModelEvent });
      else this.run({ host, event: event as TrainingEvent });
      // A machine that refused its own deadline would be fired again forever: the runtime logs it as a
      // bug and waits; the replay leaves that timer disarmed.
      if (host.timerAt === top.at && host.timerType === event.type) host.timerGen++;
    }
    if (to > this.now) this.now = to;
  }

  /** Each model's decisions and each config's paused hours, up to `until` (default: the clock). */
  summary(until = this.now): EngineSummary {
    // By config key, so that shards merge into the same object (and the same sums) as one engine.
    const pausedHours: Record<string, number> = lookupTable({});
    const trainings = [...this.trainingHosts.values()].sort((a, b) =>
      a.key < b.key ? -1 : a.key > b.key ? 1 : 0,
    );
    for (const t of trainings) {
      const open = t.pausedSince !== null && until > t.pausedSince ? until - t.pausedSince : 0;
      pausedHours[t.key] = (t.pausedMs + open) / 3_600_000;
    }
    const models = [...this.modelHosts.values()]
      .map((h) => {
        h.decisions.state = h.snapshot.value;
        h.decisions.productionVersion = h.snapshot.context.productionVersion;
        return h.decisions;
      })
      .sort((a, b) => (a.modelId < b.modelId ? -1 : a.modelId > b.modelId ? 1 : 0));
    return {
      from: this.first,
      until: Number.isFinite(until) ? until : null,
      inputs: this.inputs,
      applied: this.applied,
      models,
      pausedHours,
    };
  }

  /** The state of a model in this policy's world (the shadow's view), or null. */
  modelState(modelId: string): { state: ModelStateName; productionVersion: string | null } | null {
    const host = this.modelHosts.get(modelId);
    if (!host) return null;
    return { state: host.snapshot.value, productionVersion: host.snapshot.context.productionVersion };
  }

  /**
   * Takes a model over from the live service's committed snapshot (a stored record: `{ machine, snapshot }`),
   * at the clock's time. A shadow policy does this for a model it has not seen from its first promotion.
   */
  adopt(modelId: string, stored: unknown): boolean {
    const current = migrateSnapshot(stored as StoredSnapshot, this.modelMachine.id);
    if (current === null) throw new WardenError('internal', `cannot adopt ${modelId}: not a model snapshot`);
    const persisted = current.snapshot as unknown as { value: ModelStateName; context: ModelContext };
    // The stepper steps known states only (XState refused an unknown one when restoring it).
    if (!MODEL_STATES.includes(persisted.value))
      throw new WardenError(
        'internal',
        `cannot adopt ${modelId}: unknown state ${describe(persisted.value)}`,
      );
    // A live rollback still in flight is the live policy's: taken over once it ended, at a later input.
    if (persisted.value === 'rollingBack') return false;
    const host = this.createModel(modelId, persisted.context.configKey, persisted);
    this.armModel(host, host.snapshot.value, host.snapshot.context);
    return true;
  }

  // ---------------------------------------------------------------------------------------------

  private createModel(
    modelId: string,
    configKey: string,
    snapshot?: FlatSnapshot<ModelStateName, ModelContext>,
  ): ModelHost {
    const host: ModelHost = {
      kind: 'model',
      key: modelId,
      snapshot: snapshot ?? initialOf(this.modelMachine, { modelId, configKey }),
      decisions: {
        modelId,
        configKey,
        inputs: 0,
        state: 'healthy',
        productionVersion: null,
        rollbacks: [],
        approvals: [],
        regressions: 0,
      },
      firstBadAt: null,
      timerAt: null,
      timerType: 'COOLDOWN_ELAPSED',
      timerGen: 0,
    };
    this.modelHosts.set(modelId, host);
    if (!this.modelKeys.has(modelId)) this.modelKeys.set(modelId, configKey);
    return host;
  }

  private training(configKey: string): TrainingHost {
    let host = this.trainingHosts.get(configKey);
    if (!host) {
      host = {
        kind: 'training',
        key: configKey,
        snapshot: initialOf(this.trainingMachine, { configKey }),
        pausedSince: null,
        pausedMs: 0,
        timerAt: null,
        timerType: 'AUTO_RESUME_ELAPSED',
        timerGen: 0,
      };
      this.trainingHosts.set(configKey, host);
    }
    return host;
  }

  /** Runs one event and everything it causes (the registry's answer, the pause, its acknowledgement). */
  private run(work: Work): void {
    const queue = this.queue;
    queue.push(work);
    try {
      while (queue.length > 0) {
        const next = queue.shift()!;
        if (next.host.kind === 'model') this.sendModel(next.host, next.event as ModelEvent);
        else this.sendTraining(next.host, next.event as TrainingEvent);
      }
    } finally {
      // What a failed step had queued (its registry answer, a pause) is its own: never run at the next input.
      queue.length = 0;
    }
  }

  private sendModel(host: ModelHost, event: ModelEvent): void {
    const before = host.snapshot;
    const emitted: OutputEvent[] = [];
    // A step that throws leaves the model as it was before the event (as the runtime does).
    const after = stepOrFail('model', () => this.stepModel(before, event, emitted), event);
    host.snapshot = after;
    const outcome = this.modelMachine.outcomeOf(event) as Outcome | undefined;
    if (outcome) this.noteOutcome(host, event, outcome);
    for (const published of emitted) this.notePublished(published, event.at, host);
    const state = after.value;
    const context = after.context;
    if (state === 'rollingBack' && context.rollback && before.context.rollback !== context.rollback) {
      // The virtual registry: the rollback is applied at once.
      this.queue.push({
        host,
        event: { type: 'ROLLBACK_SUCCEEDED', at: this.now, rollbackId: context.rollback.rollbackId },
      });
    } else if (state !== 'rollingBack') {
      const next = deferredOf(context)[0];
      if (next !== undefined && !this.queue.some((w) => w.host === host)) {
        this.queue.push({ host, event: { ...next.event, at: this.now, deferredId: next.id } });
      }
    }
    this.armModel(host, state, context);
  }

  private sendTraining(host: TrainingHost, event: TrainingEvent): void {
    const emitted: OutputEvent[] = [];
    const snapshot = stepOrFail('training', () => this.stepTraining(host.snapshot, event, emitted), event);
    host.snapshot = snapshot;
    for (const published of emitted) this.notePublished(published, event.at, null);
    this.arm(host, snapshot.value === 'paused' ? snapshot.context.autoResumeAt : null, 'AUTO_RESUME_ELAPSED');
  }

  private noteOutcome(host: ModelHost, event: ModelEvent, outcome: Outcome): void {
    switch (outcome.kind) {
      case 'regression':
        host.decisions.regressions++;
        host.firstBadAt ??= event.at;
        this.onDecision({
          type: 'regression',
          at: event.at,
          modelId: host.key,
          version: host.snapshot.context.productionVersion,
          severity: outcome.severity,
          decision: outcome.decision,
        });
        break;
      case 'healthy':
      case 'cleared':
      case 'promoted':
        host.firstBadAt = null;
        break;
      default:
        break;
    }
  }

  private notePublished(published: OutputEvent, at: number, model: ModelHost | null): void {
    switch (published.type) {
      case 'PROMOTION_ROLLED_BACK': {
        const p = published.payload;
        const host = model ?? this.modelHosts.get(p.model_id)!;
        const decision = {
          type: 'rollback' as const,
          at,
          modelId: p.model_id,
          configKey: p.config_key,
          rollbackId: p.rollback_id,
          fromVersion: p.from_version,
          toVersion: p.to_version,
          trigger: p.triggered_by,
          detectionId: p.detection_id,
          msFromFirstBadEvaluation: host.firstBadAt === null ? null : at - host.firstBadAt,
        };
        host.firstBadAt = null;
        host.decisions.rollbacks.push(decision);
        this.onDecision(decision);
        // The training config hears of it, as it does from the rollback event in the service.
        this.queue.push({
          host: this.training(p.config_key),
          event: {
            type: 'PAUSE',
            at,
            by: p.by,
            reason: `rollback ${p.rollback_id} of ${p.model_id} ${p.from_version} -> ${p.to_version} (${p.triggered_by}): ${p.reason}`,
            modelId: p.model_id,
            rollbackId: p.rollback_id,
            fromVersion: p.from_version,
            toVersion: p.to_version,
          },
        });
        break;
      }
      case 'ROLLBACK_APPROVAL_REQUESTED': {
        const p = published.payload;
        const host = model ?? this.modelHosts.get(p.model_id)!;
        const decision = {
          type: 'approval_requested' as const,
          at,
          modelId: p.model_id,
          detectionId: p.detection_id,
          severity: p.severity,
          heldBecause: p.held_because,
          toVersion: p.to_version,
          deadline: Math.round(p.deadline * 1000),
        };
        host.decisions.approvals.push(decision);
        this.onDecision(decision);
        break;
      }
      case 'PAUSE_ACKNOWLEDGED': {
        const p = published.payload;
        const host = this.modelHosts.get(p.model_id);
        if (host) {
          this.queue.push({ host, event: { type: 'PAUSE_ACKNOWLEDGED', at, rollbackId: p.rollback_id } });
        }
        break;
      }
      case 'TRAINING_PAUSED': {
        const p = published.payload;
        const host = this.training(p.config_key);
        host.pausedSince ??= at;
        this.onDecision({ type: 'training_paused', at, configKey: p.config_key, modelId: p.model_id });
        break;
      }
      case 'TRAINING_RESUMED': {
        const p = published.payload;
        const host = this.training(p.config_key);
        if (host.pausedSince !== null) host.pausedMs += at - host.pausedSince;
        host.pausedSince = null;
        this.onDecision({ type: 'training_resumed', at, configKey: p.config_key });
        break;
      }
      default:
        break;
    }
  }

  /** The same deadlines as the runtime arms (src/actors/runtime.ts, deadlineOf). */
  private armModel(host: ModelHost, state: ModelStateName, context: ModelContext): void {
    if (state === 'awaitingApproval') {
      this.arm(host, context.pending?.deadline ?? null, 'APPROVAL_EXPIRED');
      return;
    }
    const cooldown =
      state === 'cooldown' || state === 'rolledBack' ? cooldownDeadline(state, context, this.policy) : null;
    this.arm(host, cooldown, 'COOLDOWN_ELAPSED');
  }

  private arm(host: Host, at: number | null, type: TimerType): void {
    if (host.timerAt === at && host.timerType === type) return;
    host.timerGen++;
    host.timerAt = at;
    host.timerType = type;
    if (at !== null) this.timers.push({ at, seq: this.timerSeq++, host, gen: host.timerGen });
    // A re-armed timer leaves its old entry behind (skipped when it comes up): every host has at most one
    // live entry, so when the stale ones outnumber them the heap is rebuilt, and memory stays bounded.
    if (this.timers.size > 2 * (this.modelHosts.size + this.trainingHosts.size) + 1024)
      this.timers.compact((e) => e.gen === e.host.timerGen);
  }
}
