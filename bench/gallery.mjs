// The gallery's queries on a large project: 50 000 generations (2 500 prompts x 20), each with 5 match
// hits against 10 000 reference images and a cluster label, as after `eidetic audit` at MemBench scale.
// Times a page (200 rows) of `gallery.list` for every sort and filter, against the reference: the plain
// `generations.list` page on the same project. The renderer asks for one page per scrolled screen.
// Run: npm run build:node && node bench/gallery.mjs [--generations 50000]
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditProject } from '../dist/main/project/project.js';
import { listGallery, recordEvidence } from '../dist/main/project/gallery.js';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const n = Number(arg('generations', '50000'));
const perPrompt = 20;
const refs = 10_000;
const project = AuditProject.create(path.join(mkdtempSync(path.join(os.tmpdir(), 'eidetic-gallery-bench-')), 'big'));
const db = project.db;
const now = new Date().toISOString();
const sha = (i) => i.toString(16).padStart(64, '0');

let t = performance.now();
db.transaction(() => {
  const img = db.prepare('INSERT INTO images (sha256, ext, width, height, bytes, created_at) VALUES (?, ?, 64, 64, 1000, ?)');
  for (let i = 0; i < n + refs; i++) img.run(sha(i), 'png', now);
  db.prepare("INSERT INTO reference_sets (id, name, source_dir, created_at) VALUES (1, 'refs', '/refs', ?)").run(now);
  const ref = db.prepare("INSERT INTO reference_images (id, set_id, file_name, image_sha256, format) VALUES (?, 1, ?, ?, 'png')");
  for (let r = 0; r < refs; r++) ref.run(r + 1, `ref-${r}.png`, sha(n + r));
  const job = db.prepare("INSERT INTO jobs (id, kind, params_json, status, created_at) VALUES (?, ?, '{}', 'succeeded', ?)");
  job.run('gen', 'generate', now);
  job.run('match', 'match', now);
  const gen = db.prepare(
    `INSERT INTO generations (id, job_id, prompt_text, seed, scheduler, steps, guidance, width, height, execution_provider, image_sha256, created_at)
     VALUES (?, 'gen', ?, ?, 'DDIMScheduler', 50, 7.5, 64, 64, 'cpu', ?, ?)`,
  );
  const match = db.prepare("INSERT INTO matches (job_id, generation_id, reference_id, rank, score) VALUES ('match', ?, ?, ?, ?)");
  const cluster = db.prepare("INSERT INTO clusters (job_id, generation_id, prompt_text, label) VALUES ('match', ?, ?, ?)");
  let s = 12345;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let g = 1; g <= n; g++) {
    const prompt = `prompt ${Math.floor((g - 1) / perPrompt)} about some subject`;
    gen.run(g, prompt, String(g), sha(g - 1), now);
    let score = 0.3 + 0.7 * rand();
    for (let k = 0; k < 5; k++) {
      match.run(g, 1 + Math.floor(rand() * refs), k, score);
      score *= 0.9;
    }
    cluster.run(g, prompt, rand() < 0.3 ? Math.floor(rand() * 2) : -1);
  }
})();
console.log(`${n} generations, ${5 * n} matches, ${refs} references written in ${((performance.now() - t) / 1000).toFixed(1)} s`);
t = performance.now();
db.transaction(() => recordEvidence(db, 'match'))();
console.log(`evidence rows written at the end of the match job: ${(performance.now() - t).toFixed(0)} ms`);

const time = (fn, reps = 5) => {
  fn();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  return (performance.now() - t0) / reps;
};
const base = time(() => project.listGenerations(undefined, 20_000, 200));
console.log(`reference: generations.list, one page of 200 at offset 20000: ${base.toFixed(1)} ms`);
const q = { sort: 'newest', clusteredOnly: false, offset: 20_000, limit: 200 };
for (const [label, input] of [
  ['newest', q],
  ['oldest', { ...q, sort: 'oldest' }],
  ['best match', { ...q, sort: 'bestMatch' }],
  ['prompt', { ...q, sort: 'prompt' }],
  ['cluster', { ...q, sort: 'cluster' }],
  ['flagged (score >= 0.75), best match', { ...q, sort: 'bestMatch', minScore: 0.75, offset: 0 }],
  ['clustered only', { ...q, clusteredOnly: true, offset: 0 }],
  ['prompt filter "prompt 12"', { ...q, prompt: 'prompt 12', offset: 0 }],
]) {
  const ms = time(() => listGallery(project, input), 3);
  console.log(`gallery.list ${label.padEnd(36)} ${ms.toFixed(1).padStart(8)} ms  (x${(ms / base).toFixed(1)} the plain page)`);
}
project.close();
