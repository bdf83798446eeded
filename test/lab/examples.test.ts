/** examples/policy-lab, as docs/policy-lab.md shows it: what each candidate does to the example history. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { readCandidate } from '../../src/lab/candidate.ts';
import { jsonLines } from '../../src/lab/sources.ts';
import { whatIf } from '../../src/lab/replay.ts';

const DIR = fileURLToPath(new URL('../../examples/policy-lab/', import.meta.url));
const history = readFileSync(`${DIR}history.jsonl`, 'utf8');
const live = loadConfig({}, `${DIR}live.yaml`);
const pairs = (rows: Array<{ from_version: string; to_version: string }>) =>
  rows.map((r) => `${r.from_version}->${r.to_version}`);

describe('examples/policy-lab', () => {
  it('the live configuration names the stricter candidate as a shadow policy', () => {
    expect(live.shadowPolicies).toEqual([{ name: 'stricter', file: 'stricter.yaml' }]);
  });

  it('stricter adds the rollback of the good but noisy v3; looser removes both rollbacks', () => {
    const stricter = whatIf(live, readCandidate(`${DIR}stricter.yaml`), jsonLines(history), { source: 'x' });
    expect(pairs(stricter.models[0]!.live.rollbacks)).toEqual(['v2->v1', 'v4->v3']);
    expect(pairs(stricter.models[0]!.rollbacks_added)).toEqual(['v3->v1', 'v4->v1']);
    expect(pairs(stricter.models[0]!.rollbacks_removed)).toEqual(['v4->v3']);
    const looser = whatIf(live, readCandidate(`${DIR}looser.yaml`), jsonLines(history), { source: 'x' });
    expect(pairs(looser.models[0]!.rollbacks_removed)).toEqual(['v2->v1', 'v4->v3']);
    expect(looser.totals.rollbacks_added).toBe(0);
  });
});
