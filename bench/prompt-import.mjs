// Prompt-file import: rows per second for MemBench-style CSV files of 3 000 and 100 000 rows, against
// the bare parse of the same bytes in the same run (so the ratio shows the cost of SQLite storage).
// Run: npm run build:node && node bench/prompt-import.mjs
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditProject } from '../dist/main/project/project.js';
import { parsePromptFile } from '../dist/main/project/prompt-files.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'eidetic-bench-'));
const project = AuditProject.create(path.join(dir, 'bench'));
console.log('rows    | parse ms | import ms | import/parse | rows/s');
for (const n of [3000, 100000]) {
  const rows = Array.from({ length: n }, (_, i) => `${i},"a photo of item ${i}, studio lighting, 4k","['http://example.invalid/${i}.jpg']"`);
  const csv = Buffer.from(',prompt,urls\n' + rows.join('\n') + '\n');
  let t = performance.now();
  parsePromptFile('bench.csv', csv);
  const parseMs = performance.now() - t;
  t = performance.now();
  project.importPrompts('bench.csv', csv);
  const importMs = performance.now() - t;
  console.log(`${String(n).padEnd(7)} | ${parseMs.toFixed(0).padStart(8)} | ${importMs.toFixed(0).padStart(9)} | ${(importMs / parseMs).toFixed(2).padStart(12)} | ${Math.round(n / (importMs / 1000))}`);
}
project.close();
