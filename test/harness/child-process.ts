import { spawn, type ChildProcess } from 'node:child_process';

export interface Child extends AsyncDisposable {
  readonly process: ChildProcess;
  /** Resolves with the first stdout line that contains `text`; rejects after `timeoutMs` or on exit. */
  line(text: string, timeoutMs?: number): Promise<string>;
  /** Sends the signal and resolves with the exit code (or the signal's name). */
  kill(signal: NodeJS.Signals): Promise<number | string>;
  /** What the process wrote on stderr, for failure messages. */
  stderr(): string;
  /** What the process wrote on stdout so far. */
  stdout(): string;
  /** Sends a signal without waiting for anything (SIGSTOP, SIGCONT). */
  signal(signal: NodeJS.Signals): void;
}

/** Runs a TypeScript entry point in a child Node process (through tsx), with extra environment. */
export function spawnTs(entry: string, env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  proc.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const listener of listeners) listener();
  });
  proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );

  const kill = async (signal: NodeJS.Signals) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return exited;
  };
  return {
    process: proc,
    line(text, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = stdout.split('\n').find((l) => l.includes(text));
          if (found === undefined) return false;
          done();
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new Error(`no "${text}" line after ${timeoutMs} ms; stdout:\n${stdout}\nstderr:\n${stderr}`),
          );
        }, timeoutMs);
        const onExit = () => {
          if (check()) return;
          done();
          reject(new Error(`exited before printing "${text}"; stdout:\n${stdout}\nstderr:\n${stderr}`));
        };
        const done = () => {
          clearTimeout(timer);
          listeners.delete(listener);
          proc.off('exit', onExit);
        };
        const listener = () => void check();
        listeners.add(listener);
        proc.once('exit', onExit);
        if (!check() && (proc.exitCode !== null || proc.signalCode !== null)) onExit();
      });
    },
    kill,
    stderr: () => stderr,
    stdout: () => stdout,
    signal(signal) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
    async [Symbol.asyncDispose]() {
      await kill('SIGKILL');
    },
  };
}

export interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end (killed after `timeoutMs`) and resolves with its exit code and output. */
export function runToEnd(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
