/**
 * `npm run readme`: regenerates the parts of README.md that are read off the code, between their markers:
 * both state diagrams (Mermaid, from the machines) and the configuration defaults (from the zod schema).
 * test/docs/readme.test.ts fails when the README's copy differs from what the code says.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { modelDiagram, trainingDiagram } from '../src/machines/diagram.ts';
import { ConfigSchema } from '../src/config/schema.ts';

export const GENERATED: Record<string, () => string> = {
  'diagram:model': () => `\`\`\`mermaid\n${modelDiagram()}\n\`\`\``,
  'diagram:training': () => `\`\`\`mermaid\n${trainingDiagram()}\n\`\`\``,
  'config:defaults': () => `\`\`\`yaml\n${stringify(ConfigSchema.parse({})).trimEnd()}\n\`\`\``,
};

export function renderInto(readme: string): string {
  let text = readme;
  for (const [name, render] of Object.entries(GENERATED)) {
    const begin = `<!-- generated:${name}:begin -->`;
    const end = `<!-- generated:${name}:end -->`;
    const pattern = new RegExp(`${begin}[\\s\\S]*?${end}`);
    if (!pattern.test(text)) throw new Error(`README.md has no ${begin} ... ${end} markers`);
    text = text.replace(pattern, () => `${begin}\n${render()}\n${end}`);
  }
  return text;
}

export const README_PATH = fileURLToPath(new URL('../README.md', import.meta.url));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(README_PATH, renderInto(readFileSync(README_PATH, 'utf8')));
  console.log('README.md: diagrams and configuration defaults regenerated');
}
