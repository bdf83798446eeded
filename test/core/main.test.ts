/**
 * The service as a real process, started every way the docs name: compiled (`node dist/main.js`, the
 * production way), from the sources (`node --import tsx src/main.ts`), through `npm start`, and through
 * `warden start`. Each starts embedded with no set-up and stops in order on SIGINT or SIGTERM; a second
 * signal ends it at once; a shutdown held up past shutdownTimeoutSeconds exits 1 and says so; SIGTERM to
 * npm's own process leaves no orphan (issue 8, finding 9). A bad configuration stops start-up with every
 * problem listed and exit code 1.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../harness/eventually.ts';
import { startNatsServer } from '../harness/nats-server.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The compiled service, built once for this file (`npm run build` compiles to dist/ the same way). */
const BUILD = join(ROOT, '.warden-test-build-main');
const dirs: string[] = [];

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-main-'));
  dirs.push(dir);
  return dir;
}

/** Only PATH and HOME from the caller: no npm_* variables leak in from `npm test`. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...extra };
}

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  output(): string;
  /** Resolves with the first output line containing `text` (bounded wait). */
  line(text: string, timeoutMs?: number): Promise<string>;
}

const started: Running[] = [];

/** A process in its own process group, so that the test can clean up npm and whatever it started. */
function launch(command: string, args: string[], env: Record<string, string>): Running {
  const child = spawn(command, args, { cwd: ROOT, env: cleanEnv(env), detached: true });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const running: Running = {
    child,
    exited,
    output: () => output,
    line: (text, timeoutMs = 30_000) =>
      eventually(
        () => {
          const found = output.split('\n').find((l) => l.includes(text));
          if (found === undefined) {
            if (child.exitCode !== null || child.signalCode !== null) {
              throw new Error(`exited before printing "${text}":\n${output}`);
            }
            throw new Error(`no "${text}" yet:\n${output}`);
          }
          return found;
        },
        { timeoutMs },
      ),
  };
  started.push(running);
  return running;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A client that sends the start of a request body and then nothing: the HTTP server cannot finish its
 * in-flight request, so the orderly shutdown is held up (a slow client, or any stuck work). The server's
 * "100 Continue" says it has the request in hand before the test goes on.
 */
async function holdShutdown(runningLine: string): Promise<Socket> {
  const port = /HTTP API on http:\/\/127\.0\.0\.1:(\d+)/.exec(runningLine)![1]!;
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => undefined);
  let received = '';
  const continued = new Promise<void>((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
      if (received.includes('100 Continue')) resolve();
    }),
  );
  socket.write(
    'POST /v1/evaluations HTTP/1.1\r\nHost: warden\r\nContent-Type: application/json\r\nContent-Length: 200\r\nExpect: 100-continue\r\n\r\n',
  );
  await continued;
  socket.write('{"model_id": ');
  return socket;
}

const sockets: Socket[] = [];

const baseEnv = (extra: Record<string, string> = {}) => ({
  WARDEN_DATA_DIR: dataDir(),
  WARDEN_HTTP_PORT: '0',
  WARDEN_LOG_LEVEL: 'info',
  ...extra,
});

/** Every way to start the service, as the docs give them. */
const launchers: Record<string, (env: Record<string, string>) => Running> = {
  'node dist/main.js (compiled)': (env) => launch(process.execPath, [join(BUILD, 'main.js')], env),
  'node --import tsx src/main.ts': (env) => launch(process.execPath, ['--import', 'tsx', 'src/main.ts'], env),
  'npm start': (env) => launch('npm', ['start', '--silent'], env),
  'warden start (compiled CLI)': (env) =>
    launch(process.execPath, [join(BUILD, 'cli', 'bin.js'), 'start'], env),
};

beforeAll(async () => {
  await promisify(execFile)(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', BUILD],
    { cwd: ROOT },
  );
}, 120_000);

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const running of started.splice(0)) {
    try {
      process.kill(-running.child.pid!, 'SIGKILL');
    } catch {
      // already gone, with its whole group
    }
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

afterAll(() => {
  rmSync(BUILD, { recursive: true, force: true });
});

describe('starting and stopping the service, every way it is started', { timeout: 90_000 }, () => {
  for (const [name, start] of Object.entries(launchers)) {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      it(`${name}: runs embedded with no set-up and stops in order on ${signal}, exit 0`, async () => {
        const running = start(baseEnv());
        const line = await running.line('Warden is running');
        expect(line).toContain('embedded mode');
        const pid = Number(/"pid":(\d+)/.exec(line)![1]);
        running.child.kill(signal);
        expect(await running.exited).toBe(0);
        expect(running.output()).toContain('Warden stopped');
        // Nothing left behind: npm's child (the service) has ended too.
        await eventually(() => expect(alive(pid)).toBe(false));
      });
    }

    it(`${name}: a second SIGTERM during a held-up shutdown ends the process at once (143), no orphan`, async () => {
      const running = start(baseEnv());
      const line = await running.line('Warden is running');
      const pid = Number(/"pid":(\d+)/.exec(line)![1]);
      sockets.push(await holdShutdown(line));
      running.child.kill('SIGTERM');
      await running.line('shutting down on SIGTERM');
      running.child.kill('SIGTERM');
      const code = await running.exited;
      expect(running.output()).toContain(
        'second signal (SIGTERM) during shutdown: ending at once with code 143, without waiting for in-flight work',
      );
      // npm reports its child's end in its own way; the service itself exits 143.
      if (name !== 'npm start') expect(code).toBe(143);
      await eventually(() => expect(alive(pid)).toBe(false));
    });
  }

  it('npx warden start: SIGTERM to npx ends the shell between them; Warden notices and stops in order', async () => {
    const running = launch('npx', ['--offline', 'warden', 'start'], baseEnv());
    const line = await running.line('Warden is running', 60_000);
    const pid = Number(/"pid":(\d+)/.exec(line)![1]);
    running.child.kill('SIGTERM');
    await running.exited;
    await eventually(() => expect(alive(pid)).toBe(false), { timeoutMs: 15_000 });
    expect(running.output()).toMatch(/shutting down on SIGTERM \(the parent process \d+ has gone\)/);
    expect(running.output()).toContain('Warden stopped');
  });

  it('a second SIGINT (a second Ctrl-C) ends it at once with 130', async () => {
    const running = launchers['node dist/main.js (compiled)']!(baseEnv());
    const line = await running.line('Warden is running');
    sockets.push(await holdShutdown(line));
    running.child.kill('SIGINT');
    await running.line('shutting down on SIGINT');
    running.child.kill('SIGINT');
    expect(await running.exited).toBe(130);
  });

  it('a shutdown held up past shutdownTimeoutSeconds exits 1 with a clear log line', async () => {
    const running = launchers['node dist/main.js (compiled)']!(
      baseEnv({ WARDEN_SHUTDOWN_TIMEOUT_SECONDS: '1' }),
    );
    const line = await running.line('Warden is running');
    sockets.push(await holdShutdown(line));
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(1);
    expect(running.output()).toContain(
      'shutdown did not finish within 1 s (shutdownTimeoutSeconds): exiting with code 1',
    );
    expect(running.output()).not.toContain('Warden stopped');
  });

  it('NATS mode with NATS gone: SIGTERM still ends the process by the deadline, saying how', async () => {
    await using nats = await startNatsServer();
    const running = launchers['node dist/main.js (compiled)']!(
      baseEnv({ WARDEN_NATS_URL: nats.url, WARDEN_SHUTDOWN_TIMEOUT_SECONDS: '3' }),
    );
    const line = await running.line('Warden is running');
    expect(line).toContain('NATS');
    await nats.stop();
    running.child.kill('SIGTERM');
    await running.line('shutting down on SIGTERM');
    const code = await running.exited;
    // Within the deadline it exits 0; at the deadline it exits 1 and says so. Never later, never hung.
    if (code === 1) {
      expect(running.output()).toContain('shutdown did not finish within 3 s (shutdownTimeoutSeconds)');
    } else {
      expect(code).toBe(0);
    }
  });

  it('a port in use or a data dir that cannot exist: one plain line saying so, exit 1', async () => {
    const first = launchers['node dist/main.js (compiled)']!(baseEnv());
    const port = /HTTP API on http:\/\/127\.0\.0\.1:(\d+)/.exec(await first.line('Warden is running'))![1]!;
    const second = launchers['node dist/main.js (compiled)']!(baseEnv({ WARDEN_HTTP_PORT: port }));
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(
      `warden: cannot start: listen EADDRINUSE: address already in use 127.0.0.1:${port}`,
    );
    expect(second.output()).not.toContain('    at ');
    const notADir = join(dataDir(), 'a-file');
    writeFileSync(notADir, '');
    const file = launchers['node dist/main.js (compiled)']!(
      baseEnv({ WARDEN_DATA_DIR: join(notADir, 'data') }),
    );
    expect(await file.exited).toBe(1);
    expect(file.output()).toContain(
      `warden: cannot start: the data directory ${join(notADir, 'data')} is not a directory: expected a directory, or a path where one can be made (WARDEN_DATA_DIR, --data-dir or dataDir)`,
    );
  });

  it('refuses a bad configuration, listing every problem, with exit code 1', async () => {
    const running = launchers['node dist/main.js (compiled)']!({
      WARDEN_DATA_DIR: dataDir(),
      WARDEN_COOLDOWN_SECONDS: 'soon',
      WARDEN_HTTP_PORT: '-1',
      WARDEN_OPERATOR_TOKENS: 'hunter2',
    });
    expect(await running.exited).toBe(1);
    const output = running.output();
    expect(output).toContain('warden: cannot start: invalid configuration in the environment:');
    expect(output).toMatch(/cooldownSeconds: .*expected number, received string/);
    expect(output).toMatch(/http\.port: .*received -1/);
    expect(output).toContain('received a secret of 7 characters (not shown)');
    expect(output).not.toContain('hunter2');
  });
});
