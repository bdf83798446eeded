/**
 * `npm run diagrams`: regenerates the Mermaid diagrams in README.md between their markers. A test fails
 * when the README's copy differs from what the machines say.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { modelDiagram, trainingDiagram } from '../src/machines/diagram.ts';

export const DIAGRAMS = { model: modelDiagram, training: trainingDiagram } as const;

export function renderInto(readme: string): string {
  let text = readme;
  for (const [name, render] of Object.entries(DIAGRAMS)) {
    const begin = `<!-- diagram:${name}:begin -->`;
    const end = `<!-- diagram:${name}:end -->`;
    const pattern = new RegExp(`${begin}[\\s\\S]*?${end}`);
    if (!pattern.test(text)) throw new Error(`README.md has no ${begin} ... ${end} markers`);
    text = text.replace(pattern, `${begin}\n\`\`\`mermaid\n${render()}\n\`\`\`\n${end}`);
  }
  return text;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const path = new URL('../README.md', import.meta.url);
  writeFileSync(path, renderInto(readFileSync(path, 'utf8')));
  console.log('README.md diagrams regenerated');
}
