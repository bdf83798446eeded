/**
 * Docker Compose's variable interpolation, as its specification states it ($$, $VAR, ${VAR}, ${VAR:-default},
 * ${VAR-default}, ${VAR:?error}, ${VAR?error}), so that tests can check what compose would do with an
 * environment without a Docker engine.
 */
export function interpolate(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
): { value: string; errors: string[] } {
  const errors: string[] = [];
  const value = text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])((?:[^}])*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (match, name?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
      if (match === '$$') return '$';
      if (bare !== undefined) return env[bare] ?? '';
      const current = env[name!];
      const missing = current === undefined || (colon === ':' && current === '');
      if (op === '-') return missing ? arg! : current!;
      if (op === '?') {
        if (missing) errors.push(`${name}: ${arg}`);
        return current ?? '';
      }
      return current ?? '';
    },
  );
  return { value, errors };
}
