/** Input ids up to this long are remembered as they are. */
export const REMEMBERED_ID_MAX = 24;

const DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Seeds of the three 32-bit lanes of the digest. */
const SEEDS = [0x9e3779b9, 0x85ebca6b, 0xc2b2ae35] as const;

/** The id digested last: a step reads it twice (admission, then the action that remembers it). */
let last = { id: '', remembered: '' };

/** One 32-bit lane over the id's UTF-16 code units: a multiply-xorshift mix and the murmur3 finaliser. */
function lane(text: string, seed: number): number {
  let h = seed ^ text.length;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x5bd1e995);
    h ^= h >>> 13;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * How a model remembers an input id in its window of recent ones (what makes a redelivery a duplicate):
 * as it is when short, else as "#" and a 96-bit digest in 16 characters. Producers often send UUIDs (36
 * characters), and 64 of them were most of a model's snapshot, written at every commit: a 2.9 KB row took
 * 1.6 times as long to commit as a 1.7 KB one (docs/performance.md). Two different ids in one model's
 * window share a digest with a chance of about 2^-84; an id made to share a digest with another one is no
 * more than sending that other id, which any producer can. Pure (machines use no Node built-ins).
 */
export function rememberedId(inputId: string): string {
  if (inputId.length <= REMEMBERED_ID_MAX) return inputId;
  if (inputId === last.id) return last.remembered;
  // 96 bits as 16 digits of 6: five from the top 30 bits of each lane, one from their three low pairs.
  let remembered = '#';
  let low = 0;
  for (const seed of SEEDS) {
    const h = lane(inputId, seed);
    for (let shift = 26; shift >= 2; shift -= 6) remembered += DIGITS[(h >>> shift) & 63];
    low = (low << 2) | (h & 3);
  }
  last = { id: inputId, remembered: remembered + DIGITS[low] };
  return last.remembered;
}
