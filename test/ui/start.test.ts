import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnTs } from '../harness/child-process.ts';

const ROOT = join(import.meta.dirname, '../..');
const dirs: string[] = [];
const temp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-start-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('ui: npm start serves the dashboard on a fresh clone', { timeout: 120_000 }, () => {
  it('prestart builds the missing dashboard, and the service serves it at /ui with its assets', async () => {
    const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts;
    // npm runs prestart before start: that is the step a fresh clone relies on.
    expect(scripts.prestart).toBe('tsx src/ui/ensure-built.ts');
    expect(scripts.build).toContain('npm run build:ui');

    const uiDir = join(temp(), 'dashboard'); // stands in for the dist/dashboard a fresh clone lacks
    const prestart = await promisify(execFile)('npx', ['tsx', 'src/ui/ensure-built.ts'], {
      cwd: ROOT,
      env: { ...process.env, WARDEN_UI_DIR: uiDir },
    });
    expect(prestart.stdout).toContain(`dashboard built in ${uiDir}`);
    expect(existsSync(join(uiDir, 'index.html'))).toBe(true);

    const child = spawnTs(join(ROOT, 'src/main.ts'), {
      WARDEN_DATA_DIR: temp(),
      WARDEN_HTTP_PORT: '0',
      WARDEN_LOG_LEVEL: 'info',
      WARDEN_UI_DIR: uiDir,
    });
    try {
      const line = await child.line('HTTP API on http://', 30_000);
      const url = /HTTP API on (http:\/\/[^\s:]+:\d+)/.exec(line)![1]!;
      const page = await fetch(`${url}/ui`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
      const html = await page.text();
      const script = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)![1]!;
      const asset = await fetch(`${url}${script}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toContain('text/javascript');
      // Nothing in the built dashboard points anywhere but this server (it must work air-gapped).
      expect(await asset.text()).not.toMatch(/https?:\/\/(?!www\.w3\.org)[a-z0-9.-]+\.[a-z]{2,}\//i);
    } finally {
      await child.kill('SIGKILL');
    }
  });
});
