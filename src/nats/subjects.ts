/**
 * Whether every subject that `pattern` matches is also matched by `filter` (NATS wildcards: `*` one
 * token, `>` one or more at the end). `warden.in.>` covers `warden.in.promotion.*`.
 */
export function covers(filter: string, pattern: string): boolean {
  const f = filter.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < f.length; i++) {
    const token = f[i];
    if (token === '>') return p.length > i;
    const other = p[i];
    if (other === undefined || other === '>') return false;
    if (token === '*') continue;
    if (other === '*' || other !== token) return false;
  }
  return f.length === p.length;
}

/** The token at `index` of a subject, or '' (subjects are validated by NATS; payloads by Warden). */
export function tokenAt(subject: string, index: number): string {
  return subject.split('.').at(index) ?? '';
}
