#!/usr/bin/env node
// The `warden` command. It runs the compiled CLI (dist/, from `npm run build`) when that is present and
// no source file is newer than it; otherwise it registers tsx and runs the TypeScript sources, so a
// fresh clone and an edited checkout both run what is in src/.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..');
const compiled = join(root, 'dist', 'cli', 'bin.js');
const sources = join(root, 'src');

/** The newest modification time under a directory (0 when it does not exist, as in a packaged install). */
function newest(dir) {
  if (!existsSync(dir)) return 0;
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return latest;
}

if (existsSync(compiled) && statSync(compiled).mtimeMs >= newest(sources)) {
  await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  const { endQuietlyWhenOutputCloses, main } = await import('../src/cli/main.ts');
  endQuietlyWhenOutputCloses();
  process.exitCode = await main(process.argv);
}
