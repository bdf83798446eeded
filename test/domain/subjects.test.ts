import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { subjectMatches } from '../../src/embedded/subjects.ts';

/** The rule as written: both split into tokens, compared one by one. */
function reference(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const token = p[i];
    if (token === '>') return s.length > i;
    if (i >= s.length) return false;
    if (token !== '*' && token !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Subjects and patterns from a small alphabet, so that matches, near misses and odd dots all come up. */
const tokenOf = fc.constantFrom('', 'a', 'b', 'ab', '*', '>', 'a*', '>b', 'warden', 'evt');
const dotted = fc.array(tokenOf, { minLength: 1, maxLength: 6 }).map((tokens) => tokens.join('.'));

describe('subject matching', () => {
  it('matches as NATS does, on the usual cases', () => {
    expect(subjectMatches('warden.in.>', 'warden.in.evaluation.m1')).toBe(true);
    expect(subjectMatches('warden.in.>', 'warden.in')).toBe(false);
    expect(subjectMatches('warden.*.evaluation.*', 'warden.in.evaluation.m1')).toBe(true);
    expect(subjectMatches('warden.*.evaluation.*', 'warden.in.evaluation.m1.x')).toBe(false);
    expect(subjectMatches('warden.in.evaluation', 'warden.in.evaluations')).toBe(false);
    expect(subjectMatches('warden.in.evaluations', 'warden.in.evaluation')).toBe(false);
    expect(subjectMatches('>', 'anything.at.all')).toBe(true);
    expect(subjectMatches('*', 'one')).toBe(true);
    expect(subjectMatches('*', 'one.two')).toBe(false);
  });

  it('agrees with token-by-token comparison of the split strings, for any pattern and subject', () => {
    fc.assert(
      fc.property(dotted, dotted, (pattern, subject) => {
        expect(subjectMatches(pattern, subject)).toBe(reference(pattern, subject));
      }),
      { numRuns: 20_000 },
    );
    fc.assert(
      fc.property(fc.string(), fc.string(), (pattern, subject) => {
        expect(subjectMatches(pattern, subject)).toBe(reference(pattern, subject));
      }),
      { numRuns: 5_000 },
    );
  });
});
