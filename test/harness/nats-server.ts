import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';
import { partitionMapping } from '../../src/nats/partitions-map.ts';

export interface NatsServerOptions {
  /** A nats.conf to load (its port and store_dir are overridden by the harness). */
  readonly configFile?: string;
  /** Extra environment for the server, e.g. the passwords nats.conf reads from `$VARS`. */
  readonly env?: Readonly<Record<string, string>>;
  readonly startTimeoutMs?: number;
  /** More command-line arguments, e.g. `['-m', '8222']` for the monitoring endpoint. */
  readonly args?: readonly string[];
  /**
   * Input partitions by prefix (nats.partitions): the server maps `<prefix>.in.*.*` to the partitioned
   * subjects, as docs/deployment.md says to configure it (a config file; not with `configFile`).
   */
  readonly partitions?: Readonly<Record<string, number>>;
}

export interface NatsServer extends AsyncDisposable {
  /** nats://127.0.0.1:<port>; the port and the store directory stay the same across restarts. */
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Stops the server (SIGTERM, then SIGKILL if it lingers). */
  stop(): Promise<void>;
  /** Kills the server with SIGKILL (no shutdown at all); `start` brings it back from its store. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same JetStream store. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Sends a signal to the running server without waiting (SIGSTOP freezes it, SIGCONT thaws it). */
  signal(signal: NodeJS.Signals): void;
  /** Everything the server logged, for failure messages. */
  log(): string;
}

/**
 * Spawns a real `nats-server -js` on a free port with its own store directory in a temporary folder.
 * Dispose (or `await using`) stops it and removes the folder.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const port = await freePort();
  const root = await mkdtemp(join(tmpdir(), 'warden-nats-'));
  const storeDir = join(root, 'jetstream');
  let configFile = options.configFile;
  if (options.partitions) {
    configFile = join(root, 'nats.conf');
    const lines = Object.entries(options.partitions).map(([prefix, count]) => {
      const { from, to } = partitionMapping(prefix, count);
      return `  "${from}": "${to}"`;
    });
    await writeFile(configFile, `mappings = {\n${lines.join('\n')}\n}\n`);
  }
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  let child: ChildProcess | null = null;
  let output = '';

  const start = async (): Promise<void> => {
    if (child) return;
    const args = ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir];
    if (configFile) args.push('-c', configFile);
    if (options.args) args.push(...options.args);
    const proc = spawn('nats-server', args, {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    // Only this start's output counts (a restart's log still holds the previous "Server is ready").
    const from = output.length;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`nats-server did not become ready in ${startTimeoutMs} ms:\n${output}`));
      }, startTimeoutMs);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.slice(from).includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        child = null;
        reject(new Error(`nats-server exited with ${code} before it was ready:\n${output}`));
      });
    });
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const proc = child;
    if (!proc) return;
    child = null;
    await new Promise<void>((resolve) => {
      const killer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      proc.once('exit', () => {
        clearTimeout(killer);
        resolve();
      });
      proc.kill(signal);
    });
  };

  try {
    await start();
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop: () => stop(),
    kill: () => stop('SIGKILL'),
    start,
    async restart() {
      await stop();
      await start();
    },
    signal(signal) {
      child?.kill(signal);
    },
    log: () => output,
    async [Symbol.asyncDispose]() {
      await stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
