import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRODUCER_TOKEN, startTestService, type TestService } from '../http/support.ts';
import { runToEnd } from '../harness/child-process.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples/python/', import.meta.url));

let t: TestService;
const events: Array<{ subject: string; data: Record<string, unknown> }> = [];

beforeAll(async () => {
  t = await startTestService({ detection: { mode: 'threshold' } });
  t.service.warden.bus.subscribe('warden.evt.>', (m) => {
    events.push({ subject: m.subject, data: m.data as Record<string, unknown> });
  });
});
afterAll(async () => {
  await t.close();
});

/** The example as a trainer runs it: python3, the standard library, and the two settings. */
function trainer(args: string[], env: Record<string, string> = {}) {
  return runToEnd('python3', [`${EXAMPLES}trainer_http.py`, ...args], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      WARDEN_URL: t.url,
      WARDEN_PRODUCER_TOKEN: PRODUCER_TOKEN,
      PYTHONDONTWRITEBYTECODE: '1',
      ...env,
    },
  });
}

describe('examples/python/trainer_http.py against a real Warden', { timeout: 60_000 }, () => {
  it('refuses to train on a config key Warden has never seen', async () => {
    const run = await trainer(['may-train', 'hex8_2pp']);
    expect(run.stdout).toBe("hex8_2pp: Warden has never seen config key 'hex8_2pp': check the spelling\n");
    expect(run.code).toBe(4);
  });

  it('promotes, evaluates with metadata, and hears "no" once the config is paused', async () => {
    expect((await trainer(['promote', 'hex8_2p', 'v1', '--elo', '1500'])).stdout).toBe(
      'promote hex8_2p: promoted, now healthy\n',
    );
    expect((await trainer(['promote', 'hex8_2p', 'v2', '--elo', '1520'])).code).toBe(0);
    const allowed = await trainer(['may-train', 'hex8_2p']);
    expect(allowed).toMatchObject({ code: 0, stdout: 'hex8_2p: may train\n' });

    const evaluated = await trainer([
      'evaluate',
      'hex8_2p',
      '--elo',
      '1400',
      '--games',
      '400',
      '--meta',
      'run_id=r-17',
      '--meta',
      'host=gpu-node-07',
    ]);
    expect(evaluated.stderr).toBe('');
    expect(evaluated.stdout).toBe('evaluate hex8_2p: regression, now rollingBack\n');
    await t.service.warden.idle();
    const detected = events.find((e) => e.subject === 'warden.evt.regression_detected.hex8_2p')!;
    expect(detected.data.metadata).toEqual({ run_id: 'r-17', host: 'gpu-node-07' });

    const paused = await trainer(['may-train', 'hex8_2p']);
    expect(paused.code).toBe(3);
    expect(paused.stdout).toMatch(/^hex8_2p: paused by warden: rollback hex8_2p\.r\d+ of hex8_2p v2 -> v1/);
  });

  it('shows the Python traps: NaN refused before sending, unknown fields and bad metadata refused by Warden', async () => {
    const nan = await trainer(['evaluate', 'hex8_2p', '--elo', 'nan', '--games', '10']);
    expect(nan.code).toBe(2);
    expect(nan.stderr).toBe('refused before sending: current_elo: expected a finite number, received nan\n');
    const badMeta = await trainer([
      'evaluate',
      'hex8_2p',
      '--elo',
      '1500',
      '--games',
      '10',
      '--meta',
      'run id=x',
    ]);
    expect(badMeta.code).toBe(2);
    expect(badMeta.stderr).toMatch(
      /^Warden refused it \(invalid_input\): .*\n {2}metadata\.run id: invalid key: expected a field name .*, received "run id"$/m,
    );
    // What json.dumps writes by default, sent as is: Warden refuses it as not JSON.
    const raw = await t.api(
      'POST',
      '/v1/evaluations',
      '{"model_id": "hex8_2p", "current_elo": NaN, "games_played": 10}',
      PRODUCER_TOKEN,
    );
    expect(raw.status).toBe(400);
    expect(raw.body.error.message).toMatch(/expected a JSON body/);
  });

  it('reports an unreachable Warden with exit 5', async () => {
    const run = await trainer(['may-train', 'hex8_2p'], { WARDEN_URL: 'http://127.0.0.1:9' });
    expect(run.code).toBe(5);
    expect(run.stderr).toMatch(/^cannot reach Warden at http:\/\/127\.0\.0\.1:9: /);
  });

  it('the nats-py example at least compiles (nats-py is not installable here: it is not run)', () => {
    const compiled = spawnSync(
      'python3',
      ['-c', `import ast,sys; ast.parse(open(sys.argv[1]).read())`, `${EXAMPLES}trainer_nats.py`],
      {
        encoding: 'utf8',
      },
    );
    expect(compiled.status, compiled.stderr).toBe(0);
  });
});
