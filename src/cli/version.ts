import { readFileSync } from 'node:fs';

/**
 * The version in package.json, which sits two levels above this file both in src/cli and in dist/cli (the
 * image copies it next to dist/).
 */
export function wardenVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
