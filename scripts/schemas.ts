/**
 * `npm run schemas`: writes docs/schemas/<payload>.schema.json, the JSON Schemas of every wire payload,
 * generated from the zod schemas that validate them. test/deploy/openapi.test.ts fails when they are stale.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { schemaFile, wireSchemas } from '../src/http/openapi.ts';

const dir = fileURLToPath(new URL('../docs/schemas/', import.meta.url));
mkdirSync(dir, { recursive: true });
for (const file of readdirSync(dir)) if (file.endsWith('.schema.json')) rmSync(`${dir}${file}`);
const schemas = wireSchemas();
for (const [name, schema] of Object.entries(schemas))
  writeFileSync(`${dir}${name}.schema.json`, `${JSON.stringify(schemaFile(name, schema), null, 2)}\n`);
console.log(`docs/schemas: ${Object.keys(schemas).length} JSON Schemas written`);
