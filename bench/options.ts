/** A positive integer option of a benchmark (`--name N`), or the fallback; anything else stops the run. */
export function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`--${name}: expected a positive integer, received ${process.argv[index + 1]}`);
  return value;
}
