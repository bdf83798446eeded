/**
 * Shadow policies: candidate configurations that run beside the live one on every accepted input, each in
 * its own policy engine (src/lab/engine.ts, the same one `warden replay` uses), and take no action. What
 * a shadow would have done is published on `<prefix>.evt.shadow.<name>.<model_id>` and counted in the
 * metrics; the live state, the registry and the training configs are never touched (the engine has its
 * own in-memory actors, registry and training configs).
 *
 * A model the shadow has not seen yet (the service started before it, or restarted since) is adopted from
 * the live model's state after the input that named it; from then on the shadow decides alone.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { Clock, EventBus } from '../actors/ports.ts';
import { PolicyEngine, type Decision } from './engine.ts';
import { overlayConfig, readCandidate } from './candidate.ts';

export interface ShadowDecisionEvent {
  readonly policy: string;
  readonly model_id: string | null;
  readonly config_key: string | null;
  readonly decision: Decision['type'];
  /** Epoch seconds of the decision on the input's clock. */
  readonly timestamp: number;
  readonly details: Record<string, unknown>;
}

export interface ShadowDeps {
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly prefix: string;
  /** The live model's snapshot now, after the input (to adopt a model the shadow has not seen), or null. */
  readonly liveSnapshot: (modelId: string) => unknown;
  /** Every decision of every shadow (the metrics count them). */
  readonly onDecision?: ((policy: string, decision: Decision) => void) | undefined;
}

function toEvent(policy: string, d: Decision): ShadowDecisionEvent {
  const { type, at, ...details } = d;
  const modelId = 'modelId' in d ? d.modelId : null;
  const configKey = 'configKey' in d ? d.configKey : null;
  return {
    policy,
    model_id: modelId,
    config_key: configKey,
    decision: type,
    timestamp: at / 1000,
    details: details as Record<string, unknown>,
  };
}

interface Shadow {
  readonly name: string;
  readonly engine: PolicyEngine;
}

export class ShadowPolicies {
  private readonly shadows: Shadow[];
  private timer: { at: number; handle: unknown } | null = null;
  private stopped = false;
  private publishing: Promise<unknown> = Promise.resolve();

  constructor(
    live: Config,
    private readonly deps: ShadowDeps,
  ) {
    this.shadows = live.shadowPolicies.map((spec) => {
      const config = spec.file
        ? readCandidate(spec.file)
        : overlayConfig(live, spec.overrides ?? {}, `shadowPolicies.${spec.name}`);
      return {
        name: spec.name,
        engine: new PolicyEngine(config, (decision) => this.publish(spec.name, decision)),
      };
    });
  }

  get names(): string[] {
    return this.shadows.map((s) => s.name);
  }

  /** One accepted input, as the live service took it. Never throws: a shadow must not hurt the service. */
  input(kind: string, at: number, payload: unknown, modelId: string): void {
    if (this.stopped) return;
    for (const shadow of this.shadows) {
      try {
        if (shadow.engine.modelState(modelId) === null) {
          const snapshot = this.deps.liveSnapshot(modelId);
          if (snapshot) {
            // Taken over as the live model is after this input (or, while a live rollback is in
            // flight, at a later input): this input is already in that state.
            shadow.engine.advance(at);
            shadow.engine.adopt(modelId, snapshot);
            continue;
          }
        }
        const issue = shadow.engine.feed({ kind, at, payload, line: 0 });
        if (issue?.level === 'skipped') {
          this.deps.logger.debug(
            { shadow: shadow.name, problem: issue.problem },
            'shadow policy skipped an input',
          );
        }
      } catch (error) {
        this.deps.logger.error({ err: error, shadow: shadow.name }, 'shadow policy failed on an input');
      }
    }
    this.arm();
  }

  /** What a shadow makes of a model now (tests and the dashboard). */
  model(name: string, modelId: string) {
    return this.shadows.find((s) => s.name === name)?.engine.modelState(modelId) ?? null;
  }

  /** Resolves when every decision so far is published. */
  async idle(): Promise<void> {
    await this.publishing;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.deps.clock.clearTimeout(this.timer.handle);
    this.timer = null;
    await this.publishing;
  }

  /** The shadows' timers (approval deadlines, cooldowns) fire on the service's clock. */
  private arm(): void {
    if (this.stopped) return;
    const next = this.shadows.reduce<number | null>((min, s) => {
      const at = s.engine.nextDeadline();
      return at !== null && (min === null || at < min) ? at : min;
    }, null);
    if (this.timer && this.timer.at === next) return;
    if (this.timer) this.deps.clock.clearTimeout(this.timer.handle);
    this.timer = null;
    if (next === null) return;
    const handle = this.deps.clock.setTimeout(
      () => {
        this.timer = null;
        const now = this.deps.clock.now();
        for (const shadow of this.shadows) {
          try {
            shadow.engine.advance(now);
          } catch (error) {
            this.deps.logger.error({ err: error, shadow: shadow.name }, 'shadow policy timer failed');
          }
        }
        this.arm();
      },
      Math.max(next - this.deps.clock.now(), 0),
    );
    this.timer = { at: next, handle };
  }

  private publish(name: string, decision: Decision): void {
    this.deps.onDecision?.(name, decision);
    const event = toEvent(name, decision);
    const key = event.model_id ?? event.config_key ?? 'unknown';
    const subject = `${this.deps.prefix}.evt.shadow.${name}.${key}`;
    this.publishing = this.publishing
      .then(() => this.deps.bus.publish(subject, event))
      .catch((error: unknown) => {
        this.deps.logger.warn({ err: error, subject }, 'could not publish a shadow decision');
      });
  }
}
