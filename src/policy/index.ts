export * from './severity.ts';
export * from './thresholds.ts';
export * from './classify.ts';
export * from './decide.ts';
