// Building an evidence report of 1,000 findings: a synthetic project (synthetic rows, real 64x64 PNG
// images in the content store) with 1,000 generations, each confirmed in the gallery and matched against
// 200 reference images (3 hits each), one model, one match job. Times `createReport` with the HTML, the
// PDF, the data tables, the signed manifest and the .zip, against the reference: plain sha256 of every
// file of the finished bundle plus a copy of the same bytes to another folder, in the same process.
// Run: npm run build:node && node bench/report-build.mjs [--findings 1000]
import { mkdtempSync, readdirSync, readFileSync, mkdirSync, writeFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { AuditProject } from '../dist/main/project/project.js';
import { recordEvidence } from '../dist/main/project/gallery.js';
import { decideGeneration } from '../dist/main/project/decision-store.js';
import { createReport } from '../dist/main/report/build.js';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const n = Number(arg('findings', '1000'));
const refs = 200;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-report-bench-'));
const project = AuditProject.create(path.join(tmp, 'bench'));
const db = project.db;
let s = 12345;
const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const image = () => Uint8Array.from({ length: 64 * 64 * 3 }, () => Math.floor(rand() * 256));

let t = performance.now();
const modelId = project.upsertModel({
  path: '/models/sd-bench', name: 'sd-bench', kind: 'text-to-image', format: 'onnx-sd',
  config: { scheduler: { className: 'DDIMScheduler', predictionType: 'epsilon' }, components: [{ name: 'unet', dtype: 'float32' }] },
  hashes: Object.fromEntries(['unet/model.onnx', 'vae_decoder/model.onnx', 'text_encoder/model.onnx'].map((f, i) => [f, createHash('sha256').update(f + i).digest('hex')])),
});
const now = new Date().toISOString();
db.prepare("INSERT INTO jobs (id, kind, params_json, status, created_at) VALUES ('gen', 'generate', '{\"scheduler\":\"ddim\"}', 'succeeded', ?)").run(now);
db.prepare("INSERT INTO reference_sets (id, name, source_dir, created_at) VALUES (1, 'refs', '/refs', ?)").run(now);
for (let r = 0; r < refs; r++) {
  const sha = await project.addImage(image(), 64, 64);
  db.prepare("INSERT INTO reference_images (id, set_id, file_name, image_sha256, format) VALUES (?, 1, ?, ?, 'png')").run(r + 1, `ref-${r}.png`, sha);
}
for (let g = 0; g < n; g++) {
  await project.addGeneration({ jobId: 'gen', modelId, prompt: `prompt ${g} about some subject`, seed: String(g), scheduler: 'DDIMScheduler', steps: 50, guidance: 7.5, executionProvider: 'cpu' }, image(), 64, 64);
}
const result = { generations: n, references: refs, embedded: n + refs, threshold: 0.8469, membenchThreshold: 0.5, perPrompt: [], unlinked: [], copies: n, clustered: 0, skipped: [], summary: { top1: 0, top3: 0, fractionAbove: 1, fractionCopies: 1 } };
db.prepare("INSERT INTO jobs (id, kind, params_json, status, result_json, created_at, finished_at) VALUES ('match', 'match', ?, 'succeeded', ?, ?, ?)").run(JSON.stringify({ descriptor: '/models/sscd' }), JSON.stringify(result), now, now);
db.transaction(() => {
  const match = db.prepare("INSERT INTO matches (job_id, generation_id, reference_id, rank, score) VALUES ('match', ?, ?, ?, ?)");
  for (let g = 1; g <= n; g++) for (let k = 0; k < 3; k++) match.run(g, 1 + Math.floor(rand() * refs), k, 0.95 - 0.05 * k);
  recordEvidence(db, 'match');
  for (let g = 1; g <= n; g++) decideGeneration(db, g, 'confirmed', `copy ${g}`);
})();
console.log(`synthetic project: ${n} confirmed generations, ${refs} references, written in ${((performance.now() - t) / 1000).toFixed(1)} s`);

t = performance.now();
const report = await createReport(project, { scope: { kind: 'project' }, operator: 'bench', caseRef: 'BENCH', includeUnreviewed: false, out: path.join(tmp, 'report'), pdf: true, zip: true, keyDir: path.join(tmp, 'key') });
const reportSeconds = (performance.now() - t) / 1000;
const bytes = (dir) => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).reduce((sum, e) => sum + statSync(path.join(e.parentPath, e.name)).size, 0);
console.log(`report: ${report.findings} findings, ${report.images} images, ${report.files} files, ${(bytes(report.dir) / 2 ** 20).toFixed(1)} MB folder + ${(statSync(report.zip).size / 2 ** 20).toFixed(1)} MB zip, in ${reportSeconds.toFixed(2)} s`);

// The same report without the PDF, without the zip, and without both: what each costs.
for (const [pdf, zip, what] of [[false, true, 'without the PDF'], [true, false, 'without the zip'], [false, false, 'without either (HTML, data tables, images, signed manifest)']]) {
  t = performance.now();
  await createReport(project, { scope: { kind: 'project' }, operator: 'bench', caseRef: 'BENCH', includeUnreviewed: false, out: path.join(tmp, `report-${pdf}-${zip}`), pdf, zip, keyDir: path.join(tmp, 'key') });
  console.log(`the same ${what}: ${((performance.now() - t) / 1000).toFixed(2)} s`);
}

// Reference: sha256 and a copy of every file of the finished bundle (the least any bundle writer does).
t = performance.now();
const copy = path.join(tmp, 'copy');
for (const e of readdirSync(report.dir, { recursive: true, withFileTypes: true }).filter((x) => x.isFile())) {
  const src = path.join(e.parentPath, e.name);
  const data = readFileSync(src);
  createHash('sha256').update(data).digest('hex');
  const dst = path.join(copy, path.relative(report.dir, src));
  mkdirSync(path.dirname(dst), { recursive: true });
  writeFileSync(dst, data);
}
const baseSeconds = (performance.now() - t) / 1000;
console.log(`reference (sha256 + copy of the bundle's bytes): ${baseSeconds.toFixed(2)} s`);
console.log(`ratio report / reference: ${(reportSeconds / baseSeconds).toFixed(1)}x; target: ${n} findings under 60 s (${reportSeconds < 60 ? 'met' : 'NOT met'})`);
project.close();
