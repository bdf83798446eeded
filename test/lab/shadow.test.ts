/**
 * Acceptance (issue 15), embedded mode: a shadow policy publishes what it would have done on
 * `warden.evt.shadow.<name>.<model_id>` and in the metrics, and never changes the live state, the registry
 * or the training configs: the same scenario with and without shadows leaves exactly the same service.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { createWarden, type Warden } from '../../src/warden.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import type { BusMessage } from '../../src/actors/ports.ts';
import { makeDataDir, startTestWarden } from '../support/test-warden.ts';
import { FakeRegistry } from '../support/fake-registry.ts';
import { LIVE, LOOSER, STRICTER, drive, interleaved } from './support.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function run(config: ConfigInput) {
  const dir = await makeDataDir();
  dirs.push(dir);
  const clock = new ManualClock(Date.UTC(2026, 2, 1));
  const metrics = createMetrics({ clock });
  const warden: Warden = await createWarden(parseConfig({ ...config, dataDir: dir }), {
    clock,
    onShadowDecision: metrics.shadowDecision,
  });
  const shadowEvents: BusMessage[] = [];
  warden.bus.subscribe('warden.evt.shadow.>', (m) => {
    shadowEvents.push(m);
  });
  const live: BusMessage[] = [];
  warden.bus.subscribe('warden.evt.>', (m) => {
    if (!m.subject.startsWith('warden.evt.shadow.')) live.push(m);
  });
  await drive(
    (kind, payload) => (kind === 'promotion' ? warden.promote(payload) : warden.evaluate(payload)),
    clock,
    interleaved(),
    async () => {
      await warden.idle();
      await warden.shadows?.idle();
    },
  );
  const state = {
    status: warden.status(),
    history: await warden.history({ limit: 100 }),
    registry: await Promise.all(['hex8', 'go9'].map((m) => warden.registry.production(m))),
    training: ['hex8', 'go9'].map((c) => warden.trainingStatus(c)),
    published: live.map((m) => ({ subject: m.subject, data: m.data })),
  };
  const shadowState = warden.shadows?.model('stricter', 'hex8') ?? null;
  const rendered = await metrics.render();
  await warden.stop();
  return { state, shadowEvents, shadowState, rendered };
}

describe('shadow policies, embedded mode', () => {
  it('publish what they would have done, and leave the live service exactly as it is without them', async () => {
    const without = await run(LIVE);
    const withShadows = await run({
      ...LIVE,
      shadowPolicies: [
        { name: 'stricter', overrides: STRICTER },
        { name: 'looser', overrides: LOOSER },
      ],
    });
    // The live service: the same state, history, registry, training configs and events, to the byte.
    expect(withShadows.state).toEqual(without.state);
    expect(
      without.state.history.rollbacks.map((r) => `${r.model_id} ${r.from_version}->${r.to_version}`),
    ).toEqual(['go9 v4->v3', 'hex8 v4->v3', 'go9 v2->v1', 'hex8 v2->v1']);
    expect(without.shadowEvents).toEqual([]);

    // The stricter shadow rolls back the good but noisy v3 as well; the looser one rolls back nothing.
    const rollbacks = (policy: string, model: string) =>
      withShadows.shadowEvents
        .filter((m) => m.subject === `warden.evt.shadow.${policy}.${model}`)
        .map((m) => m.data as { decision: string; details: { fromVersion: string; toVersion: string } })
        .filter((d) => d.decision === 'rollback')
        .map((d) => `${d.details.fromVersion}->${d.details.toVersion}`);
    expect(rollbacks('stricter', 'hex8')).toEqual(['v2->v1', 'v3->v1', 'v4->v1']);
    expect(rollbacks('stricter', 'go9')).toEqual(['v2->v1', 'v3->v1', 'v4->v1']);
    expect(rollbacks('looser', 'hex8')).toEqual([]);
    const first = withShadows.shadowEvents.find((m) => m.subject === 'warden.evt.shadow.stricter.hex8')!;
    expect(first.data).toMatchObject({ policy: 'stricter', model_id: 'hex8', timestamp: expect.any(Number) });
    // The shadow's own world moved on: in it, hex8 runs v1 again; live, it runs v3.
    expect(withShadows.shadowState).toMatchObject({ productionVersion: 'v1' });
    expect(withShadows.state.status.models.find((m) => m.model_id === 'hex8')!.production_version).toBe('v3');
    expect(withShadows.rendered).toMatch(
      /warden_shadow_decisions_total\{policy="stricter",decision="rollback"\} 6/,
    );
    expect(withShadows.rendered).toMatch(
      /warden_shadow_decisions_total\{policy="looser",decision="regression"\} \d+/,
    );
  });

  it('a shadow configuration is validated like the service configuration', () => {
    expect(() => parseConfig({ shadowPolicies: [{ name: 'a b', overrides: {} }] })).toThrow(
      /shadowPolicies.0.name: expected a single token/,
    );
    expect(() =>
      parseConfig({
        shadowPolicies: [
          { name: 'a', overrides: {} },
          { name: 'a', overrides: {} },
        ],
      }),
    ).toThrow(/expected every shadow policy to have its own name/);
  });

  it('a shadow override outside the policy, or one the schema refuses, stops the start with a clear error', async () => {
    const dir = await makeDataDir();
    dirs.push(dir);
    await expect(
      createWarden(
        parseConfig({ dataDir: dir, shadowPolicies: [{ name: 'x', overrides: { http: { port: 1 } } }] }),
      ),
    ).rejects.toThrow(/http: expected one of the policy's settings/);
    await expect(
      createWarden(
        parseConfig({ dataDir: dir, shadowPolicies: [{ name: 'x', overrides: { cooldownSeconds: -1 } }] }),
      ),
    ).rejects.toThrow(/shadowPolicies.x.*cooldownSeconds/s);
  });

  it('a shadow added to a service with history takes its models over from the live state, not mid-rollback', async () => {
    const config = { ...LIVE, cooldownSeconds: 0 };
    const first = await startTestWarden(config, { registry: new FakeRegistry(true) });
    const { warden } = first;
    await warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
    await warden.promote({ model_id: 'm', version: 'v2', elo: 1500 });
    const restarted = await startTestWarden(
      { ...config, shadowPolicies: [{ name: 'stricter', overrides: STRICTER }] },
      { dir: first.dir, clock: first.clock, registry: new FakeRegistry(false) },
    ).finally(() => first.warden.stop());
    try {
      const w = restarted.warden;
      const shadowEvents: BusMessage[] = [];
      w.bus.subscribe('warden.evt.shadow.>', (m) => {
        shadowEvents.push(m);
      });
      // A severe drop: the live rollback starts, and waits for the registry.
      await w.evaluate({ model_id: 'm', current_elo: 1440, baseline_elo: 1500, games_played: 400 });
      await w.idle();
      expect(w.status('m').models[0]!.state).toBe('rollingBack');
      expect(w.shadows!.model('stricter', 'm')).toBeNull(); // not taken over mid-rollback
      restarted.registry.settle('succeed');
      await w.idle();
      // The next input: taken over as the live model is now (v1 back in production, the input applied).
      await w.evaluate({ model_id: 'm', current_elo: 1488, baseline_elo: 1500, games_played: 400 });
      await w.idle();
      expect(w.shadows!.model('stricter', 'm')).toEqual(
        w.status('m').models.map((m) => ({ state: m.state, productionVersion: m.production_version }))[0],
      );
      expect(w.shadows!.model('stricter', 'm')).toMatchObject({ productionVersion: 'v1' });
      // From then on the shadow decides alone: two 12 Elo drops are a rollback for it, nothing live.
      restarted.clock.advance(60_000);
      await w.promote({ model_id: 'm', version: 'v3', elo: 1500 });
      for (let i = 0; i < 2; i++) {
        await w.evaluate({ model_id: 'm', current_elo: 1488, baseline_elo: 1500, games_played: 400 });
        await w.idle();
        await w.shadows!.idle();
      }
      expect(w.status('m').models[0]!.production_version).toBe('v3');
      const decisions = shadowEvents.map(
        (m) => m.data as { decision: string; details: Record<string, unknown> },
      );
      expect(decisions.filter((d) => d.decision === 'rollback').map((d) => d.details.fromVersion)).toEqual([
        'v3',
      ]);
    } finally {
      await restarted.close();
    }
  });
});
