/**
 * Regenerates `configs/config.schema.json` from the TypeBox schema:
 * `npx tsx runtime/config/write-schema.ts`. A unit test fails while the committed file is stale.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { defaultConfigPath } from './load.js';
import { configJsonSchema } from './schema.js';

const file = join(dirname(defaultConfigPath()), 'config.schema.json');
// Formatted the way the repository's Prettier settings want it, so `prettier --check` stays green.
const prettier = await import('prettier');
const options = (await prettier.resolveConfig(file)) ?? {};
const text = await prettier.format(JSON.stringify(configJsonSchema()), {
  ...options,
  filepath: file,
});
writeFileSync(file, text);
process.stdout.write(`wrote ${file}\n`);
