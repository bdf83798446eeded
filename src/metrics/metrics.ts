import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { systemClock, type Clock } from '../actors/ports.ts';
import { wardenVersion } from '../version.ts';
import type { RuntimeObserver } from '../actors/runtime.ts';
import type { WardenError } from '../domain/errors.ts';
import type { OutputEvent } from '../domain/events.ts';
import { MODEL_STATES } from '../machines/model-types.ts';
import type { Warden } from '../warden.ts';

/** Where the gauges read the current state at scrape time (the Warden, once it exists). */
export type StatusSource = Pick<Warden, 'stateCounts'> & Partial<Pick<Warden, 'stateRead'>>;

/** What the NATS adapters tell about themselves (connected; taking the inputs or standing by). */
export interface NatsSource {
  ready(): boolean;
  role(): 'active' | 'standby';
  /** The input partitions this instance takes now. */
  partitions(): readonly number[];
}

export interface MetricsOptions {
  /** Times of the last evaluation per model are read off this clock (the service's). */
  readonly clock?: Clock;
  /**
   * At most this many `warden_last_evaluation_timestamp_seconds` series, the stalest models first (the
   * ones to look at); 0: none, only the oldest time. Bounds the cardinality with very many models.
   */
  readonly maxModelSeries?: number;
}

export interface WardenMetrics {
  readonly registry: Registry;
  /** Pass in WardenDeps.observer. */
  readonly observer: RuntimeObserver;
  /** Pass in WardenDeps.onRejected; transports that validate inputs themselves call it too. */
  readonly onRejected: (kind: string, error: WardenError) => void;
  /** The gauges (models by state, pending approvals, paused configs) read from here at scrape time. */
  bind(source: StatusSource): void;
  /** NATS mode: the connection and the input lease, read at scrape time. */
  bindNats(nats: NatsSource): void;
  /** Time from an input's arrival to its committed result, per kind (evaluation, promotion, command). */
  observeProcessing(kind: string, seconds: number): void;
  httpRequest(method: string, route: string, status: number): void;
  alertDelivery(result: 'delivered' | 'failed' | 'retried'): void;
  /** A shadow policy's decision (WardenDeps.onShadowDecision): what it would have done. */
  shadowDecision(policy: string, decision: { type: string }): void;
  render(): Promise<string>;
  readonly contentType: string;
}

/**
 * Warden's Prometheus metrics, on a registry of their own (several services may share one process, as
 * tests do). Counters move with what the actors do (RuntimeObserver) and what they publish; gauges are
 * read from the actors' state when scraped, so they are right after a restart too.
 */
export function createMetrics(options: MetricsOptions = {}): WardenMetrics {
  const registry = new Registry();
  const registers = [registry];
  const clock = options.clock ?? systemClock;
  const maxModelSeries = options.maxModelSeries ?? 1000;
  let source: StatusSource | null = null;
  /** The state counts of the scrape under way (see render). */
  let scrapeCounts: ReturnType<StatusSource['stateCounts']> | null = null;
  const stateCounts = () => scrapeCounts ?? source?.stateCounts() ?? null;
  let nats: NatsSource | null = null;
  /** Model id -> epoch seconds of its last evaluation processed by this process. */
  const lastEvaluation = new Map<string, number>();

  // Process and Node.js: CPU, memory, heap, event loop lag, handles, GC (prom-client's defaults).
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'warden_build_info',
    help: 'Always 1; the version of Warden and of Node.js that runs it, as labels',
    labelNames: ['version', 'node'],
    registers,
  }).set({ version: wardenVersion(), node: process.version }, 1);
  new Gauge({
    name: 'warden_last_evaluation_timestamp_seconds',
    help: 'When this process last processed an evaluation of the model (epoch seconds); at most metrics.maxModelSeries models, stalest first',
    labelNames: ['model_id'],
    registers,
    collect() {
      this.reset();
      if (maxModelSeries === 0) return;
      const models = [...lastEvaluation].sort((a, b) => a[1] - b[1]).slice(0, maxModelSeries);
      for (const [model_id, at] of models) this.set({ model_id }, at);
    },
  });

  const evaluations = new Counter({
    name: 'warden_evaluations_total',
    help: 'Evaluations processed, by outcome (healthy, regression, insufficient_evidence, duplicate, ...)',
    labelNames: ['outcome'],
    registers,
  });
  const promotions = new Counter({
    name: 'warden_promotions_total',
    help: 'Promotions processed, by outcome',
    labelNames: ['outcome'],
    registers,
  });
  const regressions = new Counter({
    name: 'warden_regressions_total',
    help: 'Evaluations classified as a regression, by severity and what Warden decided',
    labelNames: ['severity', 'decision'],
    registers,
  });
  const rollbacks = new Counter({
    name: 'warden_rollbacks_total',
    help: 'Finished rollbacks, by trigger and result (succeeded, failed)',
    labelNames: ['trigger', 'result'],
    registers,
  });
  const pauses = new Counter({
    name: 'warden_training_pauses_total',
    help: 'Training configs paused',
    registers,
  });
  const resumes = new Counter({
    name: 'warden_training_resumes_total',
    help: 'Training configs resumed',
    registers,
  });
  const alerts = new Counter({
    name: 'warden_alerts_total',
    help: 'Alerts published, by kind and level',
    labelNames: ['kind', 'level'],
    registers,
  });
  const rejected = new Counter({
    name: 'warden_rejected_inputs_total',
    help: 'Inputs refused before reaching an actor, by kind and reason (the error code)',
    labelNames: ['kind', 'reason'],
    registers,
  });
  const transitions = new Counter({
    name: 'warden_transitions_total',
    help: 'State transitions of model and training-config actors',
    labelNames: ['actor', 'from', 'to'],
    registers,
  });
  const effectFailures = new Counter({
    name: 'warden_effect_failures_total',
    help: 'Side effects that failed (store commits, registry calls, event publications)',
    labelNames: ['what'],
    registers,
  });
  const processing = new Histogram({
    name: 'warden_processing_seconds',
    help: 'Time from an input or command reaching Warden to its committed result',
    labelNames: ['kind'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const httpRequests = new Counter({
    name: 'warden_http_requests_total',
    help: 'HTTP API requests, by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers,
  });
  const shadowDecisions = new Counter({
    name: 'warden_shadow_decisions_total',
    help: 'What shadow policies would have done (they take no action), by policy and decision',
    labelNames: ['policy', 'decision'],
    registers,
  });
  const alertDeliveries = new Counter({
    name: 'warden_alert_webhook_deliveries_total',
    help: 'Alert webhook attempts, by result (delivered, retried, failed: gave up)',
    labelNames: ['result'],
    registers,
  });

  new Gauge({
    name: 'warden_models',
    help: 'Models, by state',
    labelNames: ['state'],
    registers,
    collect() {
      const counts = new Map<string, number>(MODEL_STATES.map((s) => [s, 0]));
      // Counted, not listed: a scrape must not read every model of a million (issue 14).
      for (const [state, n] of stateCounts()?.models ?? []) counts.set(state, (counts.get(state) ?? 0) + n);
      for (const [state, count] of counts) this.set({ state }, count);
    },
  });
  new Gauge({
    name: 'warden_pending_approvals',
    help: 'Rollbacks waiting for an operator',
    registers,
    collect() {
      this.set(stateCounts()?.models.get('awaitingApproval') ?? 0);
    },
  });
  new Gauge({
    name: 'warden_paused_configs',
    help: 'Training configs paused',
    registers,
    collect() {
      this.set(stateCounts()?.pausedConfigs ?? 0);
    },
  });

  new Gauge({
    name: 'warden_state_read',
    help: "1 once this process has read every model's and config's stored state since it started, 0 while it still reads (NATS mode reads it after it starts taking inputs; until then the gauges above count what is read)",
    registers,
    collect() {
      this.set(source !== null && (source.stateRead?.() ?? true) ? 1 : 0);
    },
  });

  new Gauge({
    name: 'warden_events_unpublished',
    help: 'Output events committed by this process and not yet published (the bus is away, or its stream refuses them)',
    registers,
    collect() {
      this.set(stateCounts()?.unpublishedEvents ?? 0);
    },
  });

  // Gauges without labels show 0 until set: these are made when there is something to show, so that an
  // embedded service has no NATS series and "oldest" is absent rather than 1970 before any evaluation.
  const registerNatsGauges = (): void => {
    new Gauge({
      name: 'warden_nats_connected',
      help: 'NATS mode: 1 while connected to NATS, 0 while reconnecting (absent in embedded mode)',
      registers,
      collect() {
        this.set(nats?.ready() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'warden_input_lease_held',
      help: 'NATS mode: 1 while this instance takes the inputs (holds their lease), 0 while it stands by',
      registers,
      collect() {
        this.set(nats?.role() === 'active' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'warden_input_partitions_held',
      help: 'NATS mode: how many input partitions this instance takes now (nats.partitions; 1 or 0 unpartitioned)',
      registers,
      collect() {
        this.set(nats?.partitions().length ?? 0);
      },
    });
  };
  let oldestRegistered = false;
  const registerOldestGauge = (): void => {
    if (oldestRegistered) return;
    oldestRegistered = true;
    new Gauge({
      name: 'warden_last_evaluation_oldest_timestamp_seconds',
      help: 'The stalest model: the oldest of the last evaluation times of every model (absent before the first)',
      registers,
      collect() {
        this.reset();
        let oldest = Infinity;
        for (const at of lastEvaluation.values()) oldest = Math.min(oldest, at);
        this.set(oldest);
      },
    });
  };

  const published = (event: OutputEvent): void => {
    switch (event.type) {
      case 'PROMOTION_ROLLED_BACK':
        rollbacks.inc({ trigger: event.payload.triggered_by, result: 'succeeded' });
        break;
      case 'ROLLBACK_FAILED':
        rollbacks.inc({ trigger: event.payload.triggered_by, result: 'failed' });
        break;
      case 'TRAINING_PAUSED':
        pauses.inc();
        break;
      case 'TRAINING_RESUMED':
        resumes.inc();
        break;
      case 'ALERT':
        alerts.inc({ kind: event.payload.kind, level: event.payload.level });
        break;
      default:
        break;
    }
  };

  return {
    registry,
    observer: {
      transition: (kind, _key, from, to) => transitions.inc({ actor: kind, from, to }),
      outcome: (kind, key, event, outcome) => {
        if (kind !== 'model') return;
        if (event === 'PROMOTED') promotions.inc({ outcome: outcome.kind });
        if (event !== 'EVALUATED') return;
        lastEvaluation.set(key, clock.now() / 1000);
        registerOldestGauge();
        evaluations.inc({ outcome: outcome.kind });
        if (outcome.kind === 'regression')
          regressions.inc({ severity: outcome.severity, decision: outcome.decision });
      },
      published,
      effectFailed: (what) => effectFailures.inc({ what }),
    },
    onRejected: (kind, error) => rejected.inc({ kind, reason: error.code }),
    bind(s) {
      source = s;
    },
    bindNats(n) {
      if (nats === null) registerNatsGauges();
      nats = n;
    },
    observeProcessing: (kind, seconds) => processing.observe({ kind }, seconds),
    httpRequest: (method, route, status) => httpRequests.inc({ method, route, status: String(status) }),
    alertDelivery: (result) => alertDeliveries.inc({ result }),
    shadowDecision: (policy, decision) => shadowDecisions.inc({ policy, decision: decision.type }),
    async render() {
      // One count per scrape, shared by the gauges that read it (each count is a query per kind of actor).
      scrapeCounts = source?.stateCounts() ?? null;
      try {
        return await registry.metrics();
      } finally {
        scrapeCounts = null;
      }
    },
    contentType: registry.contentType,
  };
}
