/**
 * Issue 8, finding 10: in the embedded mode a rollback and the pause it causes are one durable unit.
 * The service runs as a real process; a burst of CRITICAL evaluations over hundreds of models is cut by
 * SIGKILL at a random moment (after a random number of answers), several times. After the last restart,
 * every rolled-back model's config is paused, by exactly that rollback, once; no detection rolled back
 * twice; and every evaluation that was answered 200 had its effect.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnTs, type Child } from '../harness/child-process.ts';
import { freePort } from '../harness/free-port.ts';
import { eventually } from '../harness/eventually.ts';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;
const MODELS = Array.from({ length: 240 }, (_, i) => `burst_${String(i).padStart(3, '0')}`);
const ROUNDS = 6;

let dir = '';
let child: Child | null = null;
afterEach(async () => {
  await child?.kill('SIGKILL');
  child = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Issue 14: the same burst with passivation active (idle actors leave memory within about 60 ms). */
let passivateAfter: string | undefined;

async function start(port: number): Promise<Child> {
  const c = spawnTs(MAIN, {
    ...(passivateAfter ? { WARDEN_PASSIVATE_AFTER_SECONDS: passivateAfter } : {}),
    WARDEN_DATA_DIR: dir,
    WARDEN_HTTP_PORT: String(port),
    WARDEN_DETECTION_MODE: 'threshold',
    WARDEN_LOG_LEVEL: 'info',
  });
  await c.line('Warden is running', 30_000);
  return c;
}

async function post(port: number, path: string, body: unknown): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

/** Runs `work` over `items`, `width` at a time; each failure (the process died) is recorded, not thrown. */
async function pool<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await work(items[next++]!).catch(() => undefined);
    }),
  );
}

interface ModelView {
  model_id: string;
  state: string;
  versions: Array<{ version: string; rolled_back_from: boolean }>;
}

describe.each([
  { passivation: 'at its default (300 s idle, so none here)', after: undefined },
  { passivation: 'after 50 ms idle', after: '0.05' },
])(
  'SIGKILL during a burst of CRITICAL evaluations (embedded mode), passivation $passivation',
  ({ after }) => {
    it('after the restart every rolled-back model has its config paused, exactly once', async () => {
      passivateAfter = after;
      let passivations = 0;
      const seed = Number(process.env.WARDEN_TEST_SEED ?? Date.now() % 100_000);
      const random = fc.sample(fc.integer({ min: 1, max: 1_000_000 }), { numRuns: ROUNDS, seed });
      dir = mkdtempSync(join(tmpdir(), 'warden-kill-'));
      const port = await freePort();
      child = await start(port);
      await pool(MODELS, 16, async (model) => {
        for (const version of ['v1', 'v2']) {
          expect(await post(port, '/v1/promotions', { model_id: model, version, elo: 1500 })).toBe(200);
        }
      });

      const answered = new Set<string>();
      const perRound = Math.ceil(MODELS.length / ROUNDS);
      for (let round = 0; round < ROUNDS; round++) {
        const batch = MODELS.slice(round * perRound, (round + 1) * perRound);
        // Kill after a random number of answers: the rest are in flight, in commit, or in the outbox.
        const killAfter = 1 + (random[round]! % Math.max(1, batch.length - 1));
        let answers = 0;
        const current = child!;
        await pool(batch, 24, async (model) => {
          const status = await post(port, '/v1/evaluations', {
            model_id: model,
            current_elo: 1400,
            games_played: 100,
          });
          if (status === 200) answered.add(model);
          if (++answers === killAfter) await current.kill('SIGKILL');
        });
        await current.kill('SIGKILL');
        passivations += current
          .stdout()
          .split('\n')
          .filter((l) => l.includes('passivated idle actors')).length;
        child = await start(port);
      }
      // With a short idle time, actors were passivated (and brought back) during the run.
      expect(passivations > 0).toBe(after !== undefined);

      const models = await eventually(
        async () => {
          const response = await fetch(`http://127.0.0.1:${port}/v1/models`);
          const { models } = (await response.json()) as { models: ModelView[] };
          const moving = models.filter((m) => m.state === 'rollingBack' || m.state === 'rolledBack');
          expect(
            moving.map((m) => `${m.model_id}:${m.state}`),
            `seed ${seed}`,
          ).toEqual([]);
          return models;
        },
        { timeoutMs: 30_000 },
      );
      const rolledBack = models.filter((m) => m.versions.some((v) => v.rolled_back_from));
      for (const model of answered) {
        expect(
          rolledBack.map((m) => m.model_id),
          `answered 200 but not rolled back (seed ${seed})`,
        ).toContain(model);
      }
      for (const model of rolledBack) {
        const response = await fetch(`http://127.0.0.1:${port}/v1/training/${model.model_id}`);
        const training = (await response.json()) as { status: string };
        expect(training.status, `${model.model_id} (seed ${seed})`).toBe('paused');
      }
      expect(await child!.kill('SIGTERM')).toBe(0);
      child = null;

      // Exactly once: one rollback per model in the history, and that rollback paused its config, once.
      const db = new Database(join(dir, 'warden.db'), { readonly: true });
      try {
        const history = db
          .prepare("SELECT model_id, payload FROM history WHERE kind = 'rolled_back'")
          .all() as Array<{ model_id: string; payload: string }>;
        const trainings = db
          .prepare("SELECT key, snapshot FROM actors WHERE kind = 'training'")
          .all() as Array<{
          key: string;
          snapshot: string;
        }>;
        const rollbackIdsOf = new Map(
          trainings.map((t) => [
            t.key,
            (JSON.parse(t.snapshot) as { snapshot: { context: { rollbackIds: string[] } } }).snapshot.context
              .rollbackIds,
          ]),
        );
        expect(history.map((h) => h.model_id).sort()).toEqual(rolledBack.map((m) => m.model_id).sort());
        for (const row of history) {
          const rollbackId = (JSON.parse(row.payload) as { rollback_id: string }).rollback_id;
          const ids = rollbackIdsOf.get(row.model_id) ?? [];
          expect(
            ids.filter((id) => id === rollbackId),
            `${row.model_id} (seed ${seed})`,
          ).toHaveLength(1);
        }
        expect(rolledBack.length).toBeGreaterThan(MODELS.length / 4);
      } finally {
        db.close();
      }
    }, 180_000);
  },
);
