/**
 * A fixed, seeded stream of inputs over many models (promotions and evaluations, some of them regressions)
 * and what Warden made of it, without wall-clock times: final model and training states, and every output
 * event id per model. A run under faults must end exactly like a clean run of the same stream.
 */
import type { Child } from '../harness/child-process.ts';
import { eventually } from '../harness/eventually.ts';
import type { TestClient } from '../harness/nats-client.ts';

export interface Input {
  readonly subject: string;
  readonly payload: Record<string, unknown>;
}

/** mulberry32: small, seeded, good enough to pick models and moments. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Per model: two promotions, evaluations (some regressing), a third promotion, more evaluations. */
export function chaosStream(prefix: string, models: number, seed: number): Input[] {
  const rnd = random(seed);
  const perModel: Input[][] = [];
  for (let i = 0; i < models; i++) {
    const m = `cm${i}`;
    const promotion = (n: number, elo: number): Input => ({
      subject: `${prefix}.in.promotion.${m}`,
      payload: { event_id: `${m}-p${n}`, model_id: `${m}_v${n}`, elo },
    });
    const evaluation = (n: number, elo: number, version?: string): Input => ({
      subject: `${prefix}.in.evaluation.${m}`,
      payload: {
        event_id: `${m}-e${n}`,
        model_id: version ? `${m}_${version}` : m,
        current_elo: elo,
        games_played: 200,
      },
    });
    const first = rnd();
    const second = rnd();
    perModel.push([
      promotion(1, 1500),
      promotion(2, 1520),
      evaluation(1, 1518, 'v2'),
      evaluation(2, first < 0.3 ? 1400 : first < 0.5 ? 1505 : 1519, 'v2'),
      evaluation(3, 1517),
      promotion(3, 1530),
      evaluation(4, 1528),
      evaluation(5, second < 0.25 ? 1405 : 1529),
    ]);
  }
  // Interleave the models at random, each model's inputs in their order.
  const out: Input[] = [];
  const cursors = perModel.map(() => 0);
  const open = perModel.map((_, i) => i);
  while (open.length > 0) {
    const pick = Math.floor(rnd() * open.length);
    const model = open[pick]!;
    out.push(perModel[model]![cursors[model]!++]!);
    if (cursors[model] === perModel[model]!.length) open.splice(pick, 1);
  }
  return out;
}

interface StatusReply {
  ok: boolean;
  models: Array<Record<string, unknown> & { versions: Array<Record<string, unknown>> }>;
  training: Array<Record<string, unknown>>;
}

export interface RunOutcome {
  readonly models: Record<string, unknown>;
  readonly training: Record<string, unknown>;
  /** Per model (or config key): the sorted `<kind>:<event_id>` of every output event. */
  readonly events: Record<string, string[]>;
  /** Per model: why its rollbacks failed (the `error` of each rollback_failed event), to explain a difference. */
  readonly failures: Record<string, string[]>;
  /**
   * Per model: the sorted `<outcome>:<event_id>` of its rollback history, as the fleet-wide history query
   * answers it (each rollback once, whichever instances moved it and whenever they were killed).
   */
  readonly history: Record<string, string[]>;
}

/** What Warden made of the stream, read over NATS (status command and the audit stream). */
export async function runOutcome(client: TestClient, prefix: string): Promise<RunOutcome> {
  const status = await client.request<StatusReply>(`${prefix}.cmd.status`, {}, 5_000);
  if (!status.ok) throw new Error(`status failed: ${JSON.stringify(status)}`);
  const models: Record<string, unknown> = {};
  for (const m of status.models) {
    const detection = m.last_detection as { detection_id: string; severity: string } | null;
    models[String(m.model_id)] = {
      state: m.state,
      production_version: m.production_version,
      consecutive_regressions: m.consecutive_regressions,
      last_detection: detection && { detection_id: detection.detection_id, severity: detection.severity },
      pending: m.pending_approval !== null,
      rolling_back: m.rolling_back,
      versions: m.versions.map((v) => [v.version, v.elo, v.rolled_back_from]),
    };
  }
  const training: Record<string, unknown> = {};
  for (const t of status.training)
    training[String(t.config_key)] = { status: t.status, may_train: t.may_train, by: t.by, reason: t.reason };
  const events: Record<string, string[]> = {};
  const failures: Record<string, string[]> = {};
  const stream = `${prefix.toUpperCase().replace(/-/g, '_')}_EVENTS`;
  for (const e of await client.stored(`${prefix}.evt.>`, stream)) {
    const tokens = e.subject.split('.');
    const key = tokens.at(-1)!;
    (events[key] ??= []).push(`${tokens.at(-2)}:${(e.data as { event_id: string }).event_id}`);
    if (tokens.at(-2) === 'rollback_failed')
      (failures[key] ??= []).push(String((e.data as { error?: unknown }).error));
  }
  for (const list of Object.values(events)) list.sort();
  const rollbacks = await client.request<{
    ok: boolean;
    rollbacks: Array<{ outcome: string; event_id: string; model_id: string }>;
  }>(`${prefix}.cmd.history`, { limit: 1000 }, 5_000);
  if (!rollbacks.ok) throw new Error(`history failed: ${JSON.stringify(rollbacks)}`);
  const history: Record<string, string[]> = {};
  for (const r of rollbacks.rollbacks) (history[r.model_id] ??= []).push(`${r.outcome}:${r.event_id}`);
  for (const list of Object.values(history)) list.sort();
  return { models, training, events, failures, history };
}

/** The models (or keys) whose outcome differs, for a readable failure message. */
export function differences(actual: RunOutcome, expected: RunOutcome): string[] {
  const out: string[] = [];
  for (const part of ['models', 'training', 'events', 'history'] as const) {
    const keys = new Set([...Object.keys(actual[part]), ...Object.keys(expected[part])]);
    for (const key of keys) {
      const a = JSON.stringify(actual[part][key]);
      const b = JSON.stringify(expected[part][key]);
      if (a !== b) out.push(`${part} ${key}: got ${a}, clean run ${b}`);
    }
  }
  // And the history is the rollback events' own record: one entry per rollback published, none more.
  const outcomeOf: Record<string, string> = {
    promotion_rolled_back: 'rolled_back',
    rollback_failed: 'rollback_failed',
  };
  for (const key of new Set([...Object.keys(actual.events), ...Object.keys(actual.history)])) {
    const published = (actual.events[key] ?? []).flatMap((e) => {
      const kind = e.slice(0, e.indexOf(':'));
      return outcomeOf[kind] ? [`${outcomeOf[kind]}:${e.slice(kind.length + 1)}`] : [];
    });
    const listed = actual.history[key] ?? [];
    if (JSON.stringify([...published].sort()) !== JSON.stringify(listed))
      out.push(
        `history ${key}: lists ${JSON.stringify(listed)}, its rollback events are ${JSON.stringify(published)}`,
      );
  }
  for (const [key, errors] of Object.entries(actual.failures))
    if (JSON.stringify(errors) !== JSON.stringify(expected.failures[key]))
      out.push(`rollback of ${key} failed: ${errors.join('; ')}`);
  return out;
}

/** Publishes through JetStream with the event id as message id, retrying while NATS is away. */
export async function publishInputs(client: TestClient, inputs: readonly Input[]): Promise<void> {
  for (const input of inputs) {
    await eventually(
      () =>
        client.js.publish(input.subject, JSON.stringify(input.payload), {
          msgID: String(input.payload.event_id),
          timeout: 2_000,
        }),
      { timeoutMs: 20_000, intervalMs: 100 },
    );
  }
}

/**
 * Waits (bounded) until the run under `prefix` ends like the clean run; `label` opens the failure. With the
 * traced Warden processes of the run (`instances`), a failure also shows, for each model that differs, the
 * inputs of it on the stream and what each instance traced of it (commits applying them, rollbacks), with the
 * partitions each held when: a fault that happens once in many runs can then be read from the log alone.
 */
export async function expectLikeClean(
  client: TestClient,
  prefix: string,
  clean: RunOutcome,
  label: string,
  timeoutMs = 60_000,
  instances: readonly Child[] = [],
): Promise<void> {
  let lastDiffering: string[] = [];
  try {
    await eventually(
      async () => {
        const problems = differences(await runOutcome(client, prefix), clean);
        lastDiffering = problems.flatMap((p) => /^models (\S+):/.exec(p)?.[1] ?? []);
        if (problems.length > 0)
          throw new Error(`${label}: ${problems.length} differences:\n${problems.slice(0, 10).join('\n')}`);
      },
      { timeoutMs, intervalMs: 500 },
    );
  } catch (error) {
    // What the state bucket itself holds for those models tells a status view that lags (the instances'
    // copies) from inputs that were never applied (the stored state, and its input position).
    const stored: string[] = [];
    for (const model of lastDiffering.slice(0, 5)) {
      const value = await client
        .kv<{ position?: number; snapshot?: { snapshot?: { value?: unknown; context?: unknown } } }>(
          `${prefix}_actors`,
          `model.${model}`,
        )
        .catch(() => null);
      const context = value?.snapshot?.snapshot?.context as
        { productionVersion?: unknown; lineage?: Array<{ version?: unknown }> } | undefined;
      stored.push(
        `stored ${model}: ${JSON.stringify({
          state: value?.snapshot?.snapshot?.value,
          production_version: context?.productionVersion,
          versions: context?.lineage?.map((v) => v.version),
          position: value?.position,
        })}`,
      );
    }
    if (stored.length === 0) throw error;
    const traced = await tracesOf(client, prefix, lastDiffering.slice(0, 3), instances);
    throw new Error(`${(error as Error).message}\n${[...stored, ...traced].join('\n')}`, { cause: error });
  }
}

/** For a failure: the stream's inputs of `models`, and what each traced instance printed of them. */
async function tracesOf(
  client: TestClient,
  prefix: string,
  models: readonly string[],
  instances: readonly Child[],
): Promise<string[]> {
  if (instances.length === 0 || models.length === 0) return [];
  const mentions = (line: string) => models.some((m) => line.includes(` ${m} `) || line.endsWith(` ${m}`));
  const lines: string[] = [];
  const inputs = await client.stored(`${prefix}.>`, `${prefix.toUpperCase()}_IN`).catch(() => []);
  for (const m of inputs) {
    const model = m.subject.slice(m.subject.lastIndexOf('.') + 1);
    if (models.includes(model))
      lines.push(`input ${m.seq} ${m.subject} ${(m.data as { event_id?: string } | null)?.event_id}`);
  }
  instances.forEach((child, i) => {
    const out = child.stdout().split('\n');
    // Of the records an instance's runtime was told of (SEEN), the last few per model.
    const seen = (line: string) => line.startsWith('SEEN ');
    for (const line of out) if (mentions(line) && !seen(line)) lines.push(`#${i} ${line}`);
    for (const model of models) {
      const heard = out.filter((line) => seen(line) && line.startsWith(`SEEN ${model} `));
      for (const line of heard.slice(-3)) lines.push(`#${i} ${line}`);
    }
    for (const line of out.filter((l) => l.startsWith('PARTITIONS ')).slice(-12)) lines.push(`#${i} ${line}`);
    lines.push(`#${i} exit ${child.process.exitCode ?? child.process.signalCode ?? 'running'}`);
  });
  return lines.slice(0, 300);
}

/** The partitions a traced Warden process (WARDEN_TEST_TRACE) holds now, and since when. */
export function heldPartitions(child: Child): { held: number[]; at: number } {
  const last = child
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('PARTITIONS '))
    .at(-1);
  if (!last) return { held: [], at: 0 };
  const [, list, at] = last.split(' ');
  return { held: !list || list === '-' ? [] : list.split(',').map(Number), at: Number(at) };
}

/**
 * What a Warden process wrote to stderr other than its own log lines (pino's JSON): a crash, an unhandled
 * rejection, a warning from Node. A request in flight when a process is frozen (SIGSTOP) for longer than the
 * request timeout times out on thaw, and the service logs that (a publish retried, a write tried again):
 * those lines say the failure was handled, and are left out.
 */
export function crashOutput(stderr: string): string {
  return stderr
    .split('\n')
    .filter((line) => !line.startsWith('{"level":'))
    .join('\n');
}
