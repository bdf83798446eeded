import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UI_BUILD_DIR } from '../http/ui-routes.ts';

const CONFIG = fileURLToPath(new URL('./vite.config.ts', import.meta.url));
const SOURCES = fileURLToPath(new URL('./app', import.meta.url));

/** Whether the build is missing or older than a source file (a checkout has sources; an image may not). */
function stale(): boolean {
  const index = join(UI_BUILD_DIR, 'index.html');
  if (!existsSync(index)) return true;
  if (!existsSync(SOURCES)) return false;
  const built = statSync(index).mtimeMs;
  return readdirSync(SOURCES).some((name) => statSync(join(SOURCES, name)).mtimeMs > built);
}

/**
 * Builds the dashboard into dist/dashboard unless an up-to-date build is there already (`npm start` on a
 * fresh clone, and the UI tests, come through here). It builds into a fresh directory and renames it into place, so that
 * two builds at once never leave half a dashboard.
 */
export async function ensureUiBuilt(
  options: { force?: boolean } = {},
): Promise<{ dir: string; built: boolean }> {
  if (!options.force && !stale()) return { dir: UI_BUILD_DIR, built: false };
  const { build } = await import('vite');
  const parent = dirname(UI_BUILD_DIR);
  mkdirSync(parent, { recursive: true });
  const scratch = mkdtempSync(join(parent, '.dashboard-'));
  try {
    await build({ configFile: CONFIG, build: { outDir: scratch, emptyOutDir: true } });
    if (!options.force && !stale()) {
      // Another process built it meanwhile (test files in parallel on a fresh clone): keep theirs, in use.
      rmSync(scratch, { recursive: true, force: true });
      return { dir: UI_BUILD_DIR, built: false };
    }
    rmSync(UI_BUILD_DIR, { recursive: true, force: true });
    chmodSync(scratch, 0o755); // mkdtemp makes it private; the service may run as another user
    renameSync(scratch, UI_BUILD_DIR);
  } catch (error) {
    rmSync(scratch, { recursive: true, force: true });
    if (existsSync(join(UI_BUILD_DIR, 'index.html'))) return { dir: UI_BUILD_DIR, built: false }; // another build won the race
    throw error;
  }
  return { dir: UI_BUILD_DIR, built: true };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const force = process.argv.includes('--force');
  ensureUiBuilt({ force })
    .then(({ dir, built }) =>
      console.log(built ? `dashboard built in ${dir}` : `dashboard up to date in ${dir}`),
    )
    .catch((error: unknown) => {
      console.error(`could not build the dashboard: ${(error as Error).message}`);
      process.exitCode = 1;
    });
}
