// The gallery's evidence rows: written when a match job ends (the latest job wins), and rebuilt for a
// project that held match jobs before the table existed (migration 7 fills it in job order).
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditProject, tablesAt } from '../../main/project/project.js';
import { LATEST_SCHEMA_VERSION } from '../../main/project/migrations/index.js';
import { listGallery } from '../../main/project/gallery.js';

function seed(p: AuditProject): void {
  const now = new Date().toISOString();
  const db = p.db;
  db.prepare("INSERT INTO images (sha256, ext, width, height, bytes, created_at) VALUES (?, 'png', 8, 8, 1, ?)").run('a'.repeat(64), now);
  db.prepare("INSERT INTO reference_sets (id, name, source_dir, created_at) VALUES (1, 'r', '/r', ?)").run(now);
  db.prepare("INSERT INTO reference_images (id, set_id, file_name, image_sha256, format) VALUES (1, 1, 'one.png', ?, 'png'), (2, 1, 'two.png', ?, 'png')").run('a'.repeat(64), 'a'.repeat(64));
  const job = db.prepare("INSERT INTO jobs (id, kind, params_json, status, created_at) VALUES (?, ?, '{}', 'succeeded', ?)");
  job.run('gen', 'generate', '2026-01-01T00:00:00Z');
  const gen = db.prepare(
    "INSERT INTO generations (id, job_id, prompt_text, scheduler, steps, guidance, width, height, execution_provider, image_sha256, created_at) VALUES (?, 'gen', ?, 'ddim', 1, 1, 8, 8, 'cpu', ?, ?)",
  );
  for (let i = 1; i <= 4; i++) gen.run(i, i <= 3 ? 'p' : 'q', 'a'.repeat(64), now);
  job.run('m1', 'match', '2026-01-01T00:00:01Z');
  p.saveMatchResults('m1', 'd', {
    newVectors: [],
    matches: [1, 2, 3, 4].map((g) => ({ generationId: g, hits: [{ referenceId: 1, rank: 0, score: 0.5 + g / 10 }, { referenceId: 2, rank: 1, score: 0.4 }] })),
    clusters: [1, 2, 3, 4].map((g) => ({ generationId: g, prompt: g <= 3 ? 'p' : 'q', label: g <= 3 ? 0 : -1 })),
  });
  // A later job that matched only generation 1, against the other reference, wins for it.
  job.run('m2', 'match', '2026-01-01T00:00:02Z');
  p.saveMatchResults('m2', 'd', { newVectors: [], matches: [{ generationId: 1, hits: [{ referenceId: 2, rank: 0, score: 0.99 }] }], clusters: [{ generationId: 1, prompt: 'p', label: -1 }] });
}

function check(p: AuditProject): void {
  const rows = listGallery(p, { sort: 'bestMatch', clusteredOnly: false, offset: 0, limit: 10 }).rows;
  expect(rows.map((r) => [r.id, r.bestScore, r.hits.map((h) => h.fileName), r.cluster])).toEqual([
    [1, 0.99, ['two.png'], { label: -1, size: 1 }],
    [4, 0.9, ['one.png', 'two.png'], { label: -1, size: 1 }],
    [3, 0.8, ['one.png', 'two.png'], { label: 0, size: 3 }],
    [2, 0.7, ['one.png', 'two.png'], { label: 0, size: 3 }],
  ]);
  expect(listGallery(p, { sort: 'newest', clusteredOnly: true, offset: 0, limit: 10 }).rows.map((r) => r.id)).toEqual([3, 2]);
  expect(listGallery(p, { sort: 'newest', clusteredOnly: false, minScore: 0.85, offset: 0, limit: 10 }).total).toBe(2);
}

describe('gallery evidence', () => {
  it('keeps the latest match job per generation, and migration 7 rebuilds it for older projects', () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'eidetic-evidence-')), 'p');
    const p = AuditProject.create(dir);
    seed(p);
    check(p);
    // As a project written before version 7: no evidence table.
    p.db.exec('DROP TABLE generation_evidence; DROP INDEX clusters_label; DROP INDEX matches_job_generation;');
    // ... and none of the tables later versions add.
    const atSix = new Set(tablesAt(6));
    for (const table of tablesAt(LATEST_SCHEMA_VERSION)) if (!atSix.has(table) && table !== 'generation_evidence') p.db.exec(`DROP TABLE IF EXISTS ${table}`);
    p.db.pragma('user_version = 6');
    p.close();
    const reopened = AuditProject.open(p.dir);
    try {
      check(reopened);
    } finally {
      reopened.close();
    }
  });
});
