/**
 * NATS subject matching: `*` matches one token, `>` one or more (the rest). Tokens are separated by ".".
 * It runs for every message routed (the in-process bus, the NATS intakes), so it walks both strings in
 * place, without splitting them into arrays or slicing tokens out.
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  let p = 0; // start of the pattern's current token
  let s = 0; // start of the subject's current token; past subject.length once it has no more
  for (;;) {
    const pDot = pattern.indexOf('.', p);
    const pEnd = pDot < 0 ? pattern.length : pDot;
    const single = pEnd - p === 1 ? pattern.charCodeAt(p) : -1;
    if (single === GREATER) return s <= subject.length;
    if (s > subject.length) return false;
    const sDot = subject.indexOf('.', s);
    const sEnd = sDot < 0 ? subject.length : sDot;
    if (single !== STAR && !sameToken(pattern, p, pEnd, subject, s, sEnd)) return false;
    s = sEnd + 1;
    if (pDot < 0) return s > subject.length;
    p = pDot + 1;
  }
}

const GREATER = '>'.charCodeAt(0);
const STAR = '*'.charCodeAt(0);

function sameToken(a: string, aFrom: number, aTo: number, b: string, bFrom: number, bTo: number): boolean {
  if (aTo - aFrom !== bTo - bFrom) return false;
  for (let i = 0; i < aTo - aFrom; i++) if (a.charCodeAt(aFrom + i) !== b.charCodeAt(bFrom + i)) return false;
  return true;
}
