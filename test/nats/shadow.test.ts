/**
 * Acceptance (issue 15), NATS mode with a real nats-server: a shadow policy publishes its decisions on
 * `<prefix>.evt.shadow.<name>.<model_id>` and never changes the live state, the registry (KV) or the
 * training configs (KV): the same inputs, published to a Warden with a shadow and to one without (each
 * under its own prefix, so each has its own streams and buckets), leave the same service behind.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { parseConfig } from '../../src/config/load.ts';
import { readInputStream } from '../../src/lab/nats-source.ts';
import { sequenced } from '../../src/lab/sources.ts';
import { replay } from '../../src/lab/replay.ts';
import { ReplayJobs } from '../../src/lab/jobs.ts';
import { SPOOL_PREFIX } from '../../src/lab/history-files.ts';
import { silentLogger } from '../../src/logger.ts';
import { LIVE, STRICTER, drive, interleaved } from '../lab/support.ts';

const nats = useSharedNats();

async function run(prefix: string, config: ConfigInput) {
  const clock = new ManualClock(Date.UTC(2026, 2, 1));
  await using w = await startNatsWarden(nats.server.url, {
    clock,
    config: { ...config, nats: { prefix } },
  });
  await drive(
    (kind, payload) => nats.client.publish(`${prefix}.in.${kind}.${payload.model_id}`, payload),
    clock,
    interleaved(),
    async () => {
      await w.settled();
      await w.warden.shadows?.idle();
    },
  );
  const upper = prefix.toUpperCase();
  const events = await nats.client.stored(`${prefix}.evt.>`, `${upper}_EVENTS`);
  const strip = (subject: string) => subject.slice(prefix.length);
  return {
    live: {
      status: w.warden.status(),
      history: await w.warden.history({ limit: 100 }),
      registry: await Promise.all(['hex8', 'go9'].map((m) => nats.client.kv(`${prefix}_registry`, m))),
      training: await Promise.all(['hex8', 'go9'].map((c) => nats.client.kv(`${prefix}_training`, c))),
      events: events
        .filter((e) => !e.subject.startsWith(`${prefix}.evt.shadow.`))
        .map((e) => ({ subject: strip(e.subject), data: e.data })),
    },
    shadow: events
      .filter((e) => e.subject.startsWith(`${prefix}.evt.shadow.`))
      .map((e) => ({ subject: strip(e.subject), data: e.data as Record<string, unknown> })),
  };
}

describe('shadow policies, NATS mode', () => {
  it('publish their decisions on the stream and leave the live state, registry and training configs as they are', async () => {
    const without = await run('plain', LIVE);
    const withShadow = await run('shady', {
      ...LIVE,
      shadowPolicies: [{ name: 'stricter', overrides: STRICTER }],
    });
    expect(withShadow.live).toEqual(without.live);
    expect(without.shadow).toEqual([]);
    expect(without.live.history.rollbacks).toHaveLength(4);
    expect(without.live.registry.map((r) => r?.version)).toEqual(['v3', 'v3']);

    const rollbacks = withShadow.shadow
      .filter((e) => e.subject === '.evt.shadow.stricter.hex8' && e.data.decision === 'rollback')
      .map((e) => e.data.details as { fromVersion: string; toVersion: string })
      .map((d) => `${d.fromVersion}->${d.toVersion}`);
    expect(rollbacks).toEqual(['v2->v1', 'v3->v1', 'v4->v1']);
    expect(withShadow.shadow.some((e) => e.subject === '.evt.shadow.stricter.go9')).toBe(true);

    // `warden replay` reads the same history back from the WARDEN_IN stream (here PLAIN_IN). Its times
    // are the stream's (wall clock: the inputs arrived within seconds here), so a policy without a
    // cooldown is replayed: the same rollbacks, with the same targets.
    const config = parseConfig({
      ...LIVE,
      cooldownSeconds: 0,
      nats: { url: nats.server.url, prefix: 'plain' },
    });
    const { entries, stream } = await readInputStream(config);
    expect(stream).toBe('PLAIN_IN');
    expect(entries).toHaveLength(interleaved().length);
    expect(entries.map((e) => e.kind)).toEqual(interleaved().map((l) => l.kind));
    const replayed = replay(config, sequenced(entries, 'stream'));
    expect(replayed.issues).toEqual([]);
    const pairs = (xs: Array<{ model: unknown; from: unknown; to: unknown }>) =>
      xs.map((x) => `${x.model} ${x.from}->${x.to}`).sort();
    expect(
      pairs(
        replayed.summary.models.flatMap((m) =>
          m.rollbacks.map((r) => ({ model: m.modelId, from: r.fromVersion, to: r.toVersion })),
        ),
      ),
    ).toEqual(
      pairs(
        without.live.history.rollbacks.map((r) => ({
          model: r.model_id,
          from: r.from_version,
          to: r.to_version,
        })),
      ),
    );

    // The HTTP replay job of a NATS-mode service reads the same stream, spooled to a temporary file that
    // it removes when done.
    const spools = () => readdirSync(tmpdir()).filter((name) => name.startsWith(SPOOL_PREFIX));
    const spoolsBefore = spools();
    const jobs = new ReplayJobs({ config, journal: null, logger: silentLogger });
    const job = jobs.start({ config: { ...LIVE, cooldownSeconds: 0 } });
    await jobs.idle();
    expect(job).toMatchObject({
      status: 'done',
      source: 'NATS stream PLAIN_IN',
      lines: interleaved().length,
    });
    expect(job.report!.totals).toMatchObject({ rollbacks_added: 0, rollbacks_removed: 0 });
    expect(spools()).toEqual(spoolsBefore);

    // And so does `warden replay` itself, by two threads reading the spooled stream: the report the job gave.
    const dir = mkdtempSync(join(tmpdir(), 'shadow-cli-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const live = join(dir, 'live.json');
    writeFileSync(
      live,
      JSON.stringify({ ...LIVE, cooldownSeconds: 0, nats: { url: nats.server.url, prefix: 'plain' } }),
    );
    const candidate = join(dir, 'candidate.json');
    writeFileSync(candidate, JSON.stringify({ ...LIVE, cooldownSeconds: 0 }));
    const env = { ...process.env };
    delete env.WARDEN_CONFIG;
    const cli = spawnSync(
      process.execPath,
      ['bin/warden.js', 'replay', '--live', live, '--config', candidate, '--json', '--workers', '2'],
      { cwd: fileURLToPath(new URL('../../', import.meta.url)), encoding: 'utf8', timeout: 30_000, env },
    );
    expect(cli.stderr).toBe('');
    expect(cli.status).toBe(0);
    expect(JSON.parse(cli.stdout)).toEqual(job.report);
  });
});
