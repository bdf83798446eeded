/**
 * lockDataDir in one process: a second lock on a directory held is refused, saying why; released, it can
 * be taken again; a data directory that is a file is named as such.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockDataDir } from '../../src/embedded/data-dir-lock.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-lock-unit-'));
  dirs.push(dir);
  return dir;
}

describe('lockDataDir', () => {
  it('refuses a second lock on a directory held, and takes it again once released', () => {
    const dir = join(tempDir(), 'data');
    const first = lockDataDir(dir);
    expect(() => lockDataDir(dir)).toThrow(
      expect.objectContaining({
        code: 'unavailable',
        message: expect.stringContaining(`the data directory ${dir} is in use by another Warden process`),
      }),
    );
    first.release();
    lockDataDir(dir).release();
  });

  it('names a data directory that is a file as such', () => {
    const file = join(tempDir(), 'not-a-dir');
    writeFileSync(file, 'x');
    for (const dir of [file, join(file, 'below')])
      expect(() => lockDataDir(dir)).toThrow(
        expect.objectContaining({
          code: 'invalid_config',
          message: `the data directory ${dir} is not a directory: expected a directory, or a path where one can be made (WARDEN_DATA_DIR, --data-dir or dataDir)`,
        }),
      );
  });
});
