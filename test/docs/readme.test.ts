/**
 * The README is part of the product: its generated parts (state diagrams, configuration defaults) must be
 * what the code says, its payload examples must pass the schemas they illustrate, and its links must exist.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { README_PATH, renderInto } from '../../scripts/readme.ts';
import { EvaluationInputSchema, OUTPUT_EVENTS, PromotionInputSchema } from '../../src/domain/events.ts';

const readme = readFileSync(README_PATH, 'utf8');

describe('docs: README', () => {
  it('has the state diagrams and configuration defaults the code generates (run `npm run readme`)', () => {
    expect(readme).toContain('stateDiagram-v2');
    expect(renderInto(readme)).toBe(readme);
  });

  it('shows output payloads that each pass one output schema exactly', () => {
    const blocks = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as object);
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    for (const block of blocks) {
      const matching = Object.entries(OUTPUT_EVENTS).filter(
        ([, spec]) => spec.schema.strict().safeParse(block).success,
      );
      expect(matching.length, JSON.stringify(block).slice(0, 120)).toBeGreaterThan(0);
    }
  });

  it('shows input examples that the input schemas accept', () => {
    const block = /```jsonc\n([\s\S]*?)```/.exec(readme)![1]!;
    // The jsonc block holds a promotion and an evaluation, with comments: strip them, split at each "{".
    const [promotion, evaluation] = block
      .replace(/\/\/[^\n]*/g, '')
      .split(/\n(?=\{)/)
      .map((text) => text.trim())
      .filter((text) => text.length > 0)
      .map((text) => JSON.parse(text) as object);
    expect(PromotionInputSchema.safeParse(promotion).success).toBe(true);
    expect(EvaluationInputSchema.safeParse(evaluation).success).toBe(true);
  });

  it('links only to files that exist', () => {
    // Relative links only (no scheme): docs/, source files, nats.conf, the Dockerfile.
    const links = [...readme.matchAll(/\]\(([^)#:]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(0);
    expect(links.filter((link) => !existsSync(new URL(`../../${link}`, import.meta.url)))).toEqual([]);
  });
});
