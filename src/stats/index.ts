export {
  type Trinomial,
  type Pentanomial,
  type GameResults,
  assertGameResults,
  gamesOf,
  isPentanomial,
} from './results.ts';
export { type EloEstimate, eloEstimate, eloFromScore, scoreFromElo, scoreAndStandardError } from './elo.ts';
export { eloScoreInterval, eloUpperBound } from './bounds.ts';
export { llrLogistic, llrNormalized, NELO_PER_T } from './llr.ts';
export { type SprtBounds, type SprtDecision, sprtBounds, sprtDecision } from './sprt.ts';
export { erfc, normalCdf, normalPdf, normalQuantile } from './normal.ts';
export { findRoot, type RootOptions } from './roots.ts';
