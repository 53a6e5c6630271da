#!/usr/bin/env node
// Writes docs/schemas/*.json from the TypeBox definitions in src/schemas/ (run after the build:
// `npm run schemas`). Files no longer defined are removed, so the folder is exactly what is published.
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { schemaFiles } = await import(join(root, 'dist', 'src', 'schemas', 'index.js'));
const out = join(root, 'docs', 'schemas');
const files = schemaFiles();
for (const name of readdirSync(out)) {
  if (name.endsWith('.json') && !files.has(name)) {
    rmSync(join(out, name));
    console.log(`removed ${name}`);
  }
}
for (const [name, text] of files) writeFileSync(join(out, name), text);
console.log(`wrote ${files.size} schemas to docs/schemas/`);
