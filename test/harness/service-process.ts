import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { eventually } from './eventually.ts';
import { freePort } from './free-port.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ServiceProcess {
  readonly child: ChildProcess;
  /** Its HTTP API, on a free port. */
  readonly url: string;
  /** The exit code (or the signal's name). */
  readonly exited: Promise<number | string>;
  /** What it wrote on stdout (unless closed) and stderr so far. */
  output(): string;
  /** Until GET /readyz answers 200 (bounded); fails at once if the process has exited. */
  ready(): Promise<void>;
}

/**
 * The embedded service as a real process (`node <args>`, from the repository's root) on `dataDir`, with
 * only PATH and HOME from the caller. `closeStdout`: the reading end of its stdout is closed before it
 * writes anything (a pipe whose reader has gone).
 */
export async function startServiceProcess(
  args: readonly string[],
  dataDir: string,
  options: { closeStdout?: boolean } = {},
): Promise<ServiceProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...args], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      WARDEN_DATA_DIR: dataDir,
      WARDEN_HTTP_PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  if (options.closeStdout) child.stdout.destroy();
  else child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const url = `http://127.0.0.1:${port}`;
  return {
    child,
    url,
    exited,
    output: () => output,
    ready: () =>
      eventually(
        async () => {
          expect(child.exitCode, output).toBeNull();
          expect((await fetch(`${url}/readyz`)).status).toBe(200);
        },
        { timeoutMs: 20_000 },
      ),
  };
}
