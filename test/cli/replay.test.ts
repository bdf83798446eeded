import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { createWarden } from '../../src/warden.ts';
import { makeDataDir } from '../support/test-warden.ts';
import {
  LIVE,
  LOOSER,
  STRICTER,
  evaluation,
  interleaved,
  knownVersions,
  toJsonLines,
} from '../lab/support.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the real executable, as a user would: `node bin/warden.js replay ...`. */
function warden(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return wardenWithInput(undefined, ...args);
}

/** The same, with `input` as its standard input. */
function wardenWithInput(
  input: string | undefined,
  ...args: string[]
): { status: number | null; stdout: string; stderr: string } {
  const env = { ...process.env };
  delete env.WARDEN_CONFIG;
  const result = spawnSync(process.execPath, ['bin/warden.js', 'replay', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
    env,
    input,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

let dir: string;
const file = (name: string) => join(dir, name);
beforeAll(async () => {
  dir = await makeDataDir();
  writeFileSync(file('history.jsonl'), `${toJsonLines(knownVersions())}\n`);
  writeFileSync(file('live.json'), JSON.stringify({ ...LIVE, dataDir: join(dir, 'data') }));
  writeFileSync(file('stricter.json'), JSON.stringify(STRICTER));
  writeFileSync(file('looser.json'), JSON.stringify(LOOSER));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cli: warden replay', () => {
  it('prints the per-model table and the differences, and exits 7 when the candidate changes rollbacks', () => {
    const run = warden(file('history.jsonl'), '--live', file('live.json'), '--config', file('stricter.json'));
    expect(run.stderr).toBe('');
    expect(run.status).toBe(7);
    expect(run.stdout).toMatch(
      /^model\s+rollbacks\s+added\s+removed\s+approvals\s+min to rollback\s+paused h$/m,
    );
    expect(run.stdout).toMatch(/^hex8\s+2 -> 3\s+\+2\s+-1\s/m);
    expect(run.stdout).toContain('+ hex8: the candidate rolls back v3 -> v1');
    expect(run.stdout).toContain(
      'verdict: FAIL: the candidate adds 2 rollback(s) and removes 1 (--fail-on any)',
    );
  });

  it('--json for scripts, and --fail-on added lets a candidate that only removes rollbacks pass', () => {
    const run = warden(
      file('history.jsonl'),
      '--live',
      file('live.json'),
      '--config',
      file('looser.json'),
      '--fail-on',
      'added',
      '--json',
    );
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.totals).toMatchObject({ rollbacks_added: 0, rollbacks_removed: 2 });
    expect(report.verdict).toEqual({
      fail_on: 'added',
      failed: false,
      reason: 'the candidate adds 0 rollback(s) and removes 2 (allowed by --fail-on added)',
    });
  });

  it('without a file, replays the embedded input journal the service kept (refused inputs are not in it)', async () => {
    const config = parseConfig({ ...LIVE, dataDir: join(dir, 'data') });
    const clock = new ManualClock(Date.UTC(2026, 2, 1));
    const service = await createWarden(config, { clock });
    for (const line of knownVersions()) {
      const { kind, timestamp, ...payload } = line;
      clock.advance(Math.max((timestamp as number) * 1000 - clock.now(), 0));
      if (kind === 'promotion') await service.promote(payload);
      else await service.evaluate(payload);
      await service.idle();
    }
    // Refused inputs are not journaled: they were never taken.
    await expect(
      service.evaluate({ ...evaluation(0, 'ghost', 'v1', 1500), timestamp: undefined }),
    ).rejects.toThrow();
    await service.stop();
    const run = warden('--live', file('live.json'), '--config', file('stricter.json'), '--json');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(7);
    const report = JSON.parse(run.stdout);
    expect(report.history).toMatchObject({ inputs: 28, applied: 28, skipped: 0 });
    expect(report.history.source).toMatch(/^input journal in /);
    expect(report.totals).toMatchObject({ rollbacks_added: 2, rollbacks_removed: 1 });
    // Each of three threads reads the journal itself, and they give the report one thread gives.
    const three = warden(
      '--live',
      file('live.json'),
      '--config',
      file('stricter.json'),
      '--json',
      '--workers',
      '3',
    );
    expect(three.stderr).toBe('');
    expect(three.stdout).toBe(run.stdout);
  });

  it('bad usage exits 2 with what was expected; an unreadable history exits 1', () => {
    const noConfig = warden(file('history.jsonl'));
    expect(noConfig.status).toBe(2);
    expect(noConfig.stderr).toContain("required option '--config <file>' not specified");
    writeFileSync(file('bad.json'), JSON.stringify({ cooldownSeconds: -5 }));
    const badConfig = warden(
      file('history.jsonl'),
      '--live',
      file('live.json'),
      '--config',
      file('bad.json'),
    );
    expect(badConfig.status).toBe(2);
    expect(badConfig.stderr).toContain('cooldownSeconds');
    const badTime = warden(file('history.jsonl'), '--config', file('looser.json'), '--until', 'soon');
    expect(badTime.status).toBe(2);
    expect(badTime.stderr).toContain(
      '--until: expected epoch seconds (at most 253402300799), an ISO 8601 date-time',
    );
    const missing = warden(
      file('nothing.jsonl'),
      '--live',
      file('live.json'),
      '--config',
      file('looser.json'),
    );
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('cannot read the history');
    const directory = warden(dir, '--live', file('live.json'), '--config', file('looser.json'));
    expect(directory.status).toBe(1);
    expect(directory.stderr).toContain(
      `cannot read the history: ${dir} is a directory, not a JSON Lines file`,
    );
  });

  it(
    'a history on standard input ("-"), read once for every thread, gives the report the file gives',
    { timeout: 60_000 },
    () => {
      writeFileSync(file('piped.jsonl'), `${toJsonLines(interleaved())}\n`);
      const args = ['--live', file('live.json'), '--config', file('stricter.json'), '--json'];
      const fromFile = warden(file('piped.jsonl'), ...args, '--workers', '1');
      const piped = wardenWithInput(
        readFileSync(file('piped.jsonl'), 'utf8'),
        '-',
        ...args,
        '--workers',
        '2',
      );
      expect(piped.stderr).toBe('');
      expect(piped.status).toBe(7);
      const [a, b] = [JSON.parse(fromFile.stdout), JSON.parse(piped.stdout)];
      expect(b.history.source).toBe('stdin');
      expect({ ...b, history: { ...b.history, source: a.history.source } }).toEqual(a);
    },
  );

  it(
    '--workers 3: the history replayed by three threads gives the report one thread gives',
    { timeout: 60_000 },
    () => {
      writeFileSync(file('two.jsonl'), `${toJsonLines(interleaved())}\n`);
      const args = [
        file('two.jsonl'),
        '--live',
        file('live.json'),
        '--config',
        file('stricter.json'),
        '--json',
      ];
      const one = warden(...args, '--workers', '1');
      const three = warden(...args, '--workers', '3');
      expect(three.stderr).toBe('');
      expect(one.status).toBe(7);
      expect(three.status).toBe(7);
      expect(JSON.parse(one.stdout).totals.rollbacks_added).toBeGreaterThan(0);
      expect(three.stdout).toBe(one.stdout);
      const badWorkers = warden(...args, '--workers', '0');
      expect(badWorkers.status).toBe(2);
      expect(badWorkers.stderr).toContain('--workers: expected a whole number from 1 to 256, received "0"');
    },
  );
});
