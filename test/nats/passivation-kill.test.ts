/**
 * Passivated actors' deadlines move with their partitions (issue 14, NATS mode, real processes and real
 * time): three instances share the partitions, every model is held for approval and passivated, and one
 * instance is SIGKILLed before the deadlines. The survivors take its partitions and every approval still
 * expires once, every config is paused once and resumes once by itself: nothing lost, nothing doubled.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnTs, type Child } from '../harness/child-process.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { eventsPerActor, onceEach } from '../support/event-counts.ts';
import { crashOutput, heldPartitions } from './chaos-stream.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/warden-process.ts', import.meta.url));
const PREFIX = 'pkillpass';
const PARTITIONS = 6;
const MODELS = Array.from({ length: 24 }, (_, i) => `km${i}`);
const APPROVAL_S = 6;
const RESUME_S = 4;
/**
 * When the instance is killed, after every model is held for approval: drawn from 1.5 s (passivated, the
 * deadlines ahead) to 10 s (the approvals expiring, the rollbacks and pauses under way, the configs about to
 * resume). Printed with every failure: PKILL_AT_MS=<ms> replays it.
 */
const KILL_AT_MS = Number(process.env.PKILL_AT_MS ?? 1_500 + Math.floor(Math.random() * 8_500));

const nats = useSharedNats({ partitions: { [PREFIX]: PARTITIONS } });
const dir = mkdtempSync(join(tmpdir(), 'warden-pkill-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function warden(configFile: string): Child {
  return spawnTs(FIXTURE, {
    WARDEN_CONFIG: configFile,
    WARDEN_NATS_URL: nats.server.url,
    WARDEN_LOG_LEVEL: 'warn',
    WARDEN_TEST_LOG: 'info', // the fixture's own log: passivations are logged at info
    WARDEN_TEST_TRACE: '1',
  });
}

const perActor = (kind: string, field: 'model_id' | 'config_key') =>
  eventsPerActor(nats.client, PREFIX, kind, field);
const once = onceEach(MODELS);

/** The state each model's stored value is in. */
async function storedStates(): Promise<string[]> {
  const states: string[] = [];
  for (const model of MODELS) {
    const value = await nats.client.kv<{ snapshot: { snapshot: { value: string } } }>(
      `${PREFIX}_actors`,
      `model.${model}`,
    );
    states.push(value?.snapshot.snapshot.value ?? 'absent');
  }
  return states;
}

describe(`passivated deadlines across a SIGKILL (${KILL_AT_MS} ms after the approvals are held)`, () => {
  it('move with their partitions: every approval expires once, every config pauses and resumes once', async () => {
    const configFile = join(dir, 'warden.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        cooldownSeconds: 3600,
        approval: { requireForSevere: true, timeoutSeconds: APPROVAL_S, onTimeout: 'rollback' },
        training: { autoResumeSeconds: RESUME_S },
        passivateAfterSeconds: 1,
        nats: { prefix: PREFIX, partitions: PARTITIONS },
      }),
    );
    const running = [warden(configFile), warden(configFile), warden(configFile)];
    const all = [...running];
    try {
      await Promise.all(running.map((c) => c.line('READY')));
      await eventually(() => expect(running.map((c) => heldPartitions(c).held.length)).toEqual([2, 2, 2]), {
        timeoutMs: 15_000,
      });
      const publish = (kind: string, model: string, body: object) =>
        nats.client.publish(`${PREFIX}.in.${kind}.${model}`, body);
      for (const model of MODELS) {
        await publish('promotion', model, { event_id: `${model}-p1`, model_id: `${model}_v1`, elo: 1500 });
        await publish('promotion', model, { event_id: `${model}-p2`, model_id: `${model}_v2`, elo: 1500 });
        // Severe (a drop of 60 over 100 games): held for approval, which nobody gives.
        await publish('evaluation', model, {
          event_id: `${model}-e1`,
          model_id: `${model}_v2`,
          current_elo: 1440,
          games_played: 100,
        });
      }
      await eventually(
        async () => expect(new Set(await storedStates())).toEqual(new Set(['awaitingApproval'])),
        {
          timeoutMs: 10_000,
          intervalMs: 100,
        },
      );
      // Idle for longer than a second: passivated on every instance. Then one of them dies, before the
      // deadlines or while they act (the moment of the fault itself, not a wait for something to happen).
      const held = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      for (const child of running) expect(child.stderr()).toContain('passivated idle actors');
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, KILL_AT_MS - (Date.now() - held))));
      const victim = running.splice(1, 1)[0]!;
      await victim.kill('SIGKILL');

      await eventually(
        async () => {
          expect(await perActor('promotion_rolled_back', 'model_id')).toEqual(once);
          expect(await perActor('training_resumed', 'config_key')).toEqual(once);
        },
        { timeoutMs: 40_000, intervalMs: 500 },
      );
      expect(await perActor('training_paused', 'config_key')).toEqual(once);
      // The killed instance's partitions are taken (the events may all have come before it died).
      await eventually(
        () => expect([...running.flatMap((c) => heldPartitions(c).held)].sort()).toEqual([0, 1, 2, 3, 4, 5]),
        { timeoutMs: 10_000 },
      );
      expect(await perActor('promotion_rolled_back', 'model_id')).toEqual(once);
      expect(await perActor('training_resumed', 'config_key')).toEqual(once);
      for (const child of running) expect(child.process.exitCode, crashOutput(child.stderr())).toBeNull();
      for (const child of all) expect(crashOutput(child.stderr())).toBe('');
    } finally {
      await Promise.all(all.map((c) => c.kill('SIGKILL')));
    }
  }, 90_000);
});
