#!/usr/bin/env node
// The `eidetic` command. The TypeScript sources are compiled by `npm run build` (run by npm ci's prepare step).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main', 'cli', 'main.js');
if (!existsSync(entry)) {
  console.error(`eidetic: ${entry} is missing; run 'npm run build' in the eidetic folder first.`);
  process.exit(1);
}
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv);
