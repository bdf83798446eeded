/**
 * Output piped into a reader that has stopped (`warden pause --help | head -1`): the command ends quietly,
 * with exit code 0, instead of dying on EPIPE with a stack trace. Run through the real executable, with the
 * reading end of its output closed before it writes anything.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function runWithOutputClosed(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/warden.js', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('the CLI with its output closed early', () => {
  it.each([
    ['help written in two parts', ['pause', '--help']],
    ['a result block', ['sprt', '--results', '100,60,120']],
  ])('ends quietly: %s', async (_, args) => {
    const { code, stderr } = await runWithOutputClosed(args);
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
