import { readFileSync } from 'node:fs';

/**
 * The version in package.json, which sits one level above this file both in src/ and in dist/ (the
 * image copies it next to dist/).
 */
export function wardenVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
