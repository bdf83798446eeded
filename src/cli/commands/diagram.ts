import { Option, type Command } from 'commander';

/** `warden diagram`: the two machines as Mermaid, read off their definitions. */
export function registerDiagramCommand(program: Command): void {
  program
    .command('diagram')
    .description('Print the model and training-config state machines as Mermaid diagrams')
    .addOption(new Option('--machine <which>', 'only one machine').choices(['model', 'training']))
    .option('--markdown', 'wrap each diagram in a ```mermaid fence')
    .option('--json', 'print {model, training} as JSON')
    .action(async (options: { machine?: 'model' | 'training'; markdown?: boolean; json?: boolean }) => {
      const { modelDiagram, trainingDiagram } = await import('../../machines/diagram.ts');
      const diagrams = [
        { name: 'model', title: 'Model actor (one per model)', mermaid: modelDiagram() },
        { name: 'training', title: 'Training-config actor (one per config)', mermaid: trainingDiagram() },
      ].filter((d) => options.machine === undefined || d.name === options.machine);
      if (options.json) {
        process.stdout.write(
          `${JSON.stringify(Object.fromEntries(diagrams.map((d) => [d.name, d.mermaid])), null, 2)}\n`,
        );
        return;
      }
      const blocks = diagrams.map((d) =>
        options.markdown
          ? `${d.title}:\n\n\`\`\`mermaid\n${d.mermaid}\n\`\`\``
          : `%% ${d.title}\n${d.mermaid}`,
      );
      process.stdout.write(`${blocks.join('\n\n')}\n`);
    });
}
