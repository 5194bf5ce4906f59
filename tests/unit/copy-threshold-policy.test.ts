// One threshold policy (issue "Trustworthy numbers", section 3): MemBench's metrics exist only for prompts
// with linked reference images (the others are listed as unlinked, with their best match as evidence,
// never a metric), SSCD>0.5 stays at 0.5 while copies are counted at the calibrated threshold, and the
// gallery gets its default threshold from the data (the latest match job's), not a constant.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditProject } from '../../main/project/project.js';
import { galleryThreshold, listGallery } from '../../main/project/gallery.js';
import { perPromptMetrics } from '../../main/project/per-prompt-metrics.js';

const sha = (c: string) => c.repeat(64);

function setup(): AuditProject {
  const p = AuditProject.create(path.join(mkdtempSync(path.join(os.tmpdir(), 'eidetic-policy-')), 'p'));
  const db = p.db;
  const now = new Date().toISOString();
  const image = db.prepare("INSERT INTO images (sha256, ext, width, height, bytes, created_at) VALUES (?, 'png', 8, 8, 1, ?)");
  for (const c of ['a', 'b', '1', '2', '3', '4']) image.run(sha(c), now);
  db.prepare("INSERT INTO reference_sets (id, name, source_dir, created_at) VALUES (1, 'r', '/r', ?)").run(now);
  db.prepare("INSERT INTO reference_images (id, set_id, file_name, image_sha256, format) VALUES (1, 1, 'own.png', ?, 'png'), (2, 1, 'other.png', ?, 'png')").run(sha('a'), sha('b'));
  db.prepare("INSERT INTO prompt_sets (id, name, source_file, source_sha256, format, created_at) VALUES (1, 's', 's.csv', 'x', 'csv', ?)").run(now);
  db.prepare("INSERT INTO prompts (id, set_id, idx, text) VALUES (1, 1, 0, 'linked prompt'), (2, 1, 1, 'plain prompt')").run();
  db.prepare('INSERT INTO prompt_references (prompt_id, reference_id) VALUES (1, 1)').run();
  db.prepare("INSERT INTO jobs (id, kind, params_json, status, created_at) VALUES ('gen', 'generate', '{}', 'succeeded', ?)").run(now);
  const gen = db.prepare(
    "INSERT INTO generations (id, job_id, prompt_id, prompt_text, scheduler, steps, guidance, width, height, execution_provider, image_sha256, created_at) VALUES (?, 'gen', ?, ?, 'ddim', 1, 1, 8, 8, 'cpu', ?, ?)",
  );
  gen.run(1, 1, 'linked prompt', sha('1'), now);
  gen.run(2, 1, 'linked prompt', sha('2'), now);
  gen.run(3, 2, 'plain prompt', sha('3'), now);
  gen.run(4, 2, 'plain prompt', sha('4'), now);
  return p;
}

const vec = (x: number, y: number) => Float32Array.from([x, y]);
const VECTORS = [
  { sha256: sha('a'), vector: vec(1, 0) }, // own.png, linked to 'linked prompt'
  { sha256: sha('b'), vector: vec(0, 1) }, // other.png
  { sha256: sha('1'), vector: vec(0.8, 0.6) }, // 0.8 to own.png
  { sha256: sha('2'), vector: vec(0.6, 0.8) }, // 0.6 to own.png (0.8 to other.png: not its own image)
  { sha256: sha('3'), vector: vec(0, 1) }, // 1.0 to other.png
  { sha256: sha('4'), vector: vec(0.6, 0.8) },
];
const QUERIES = [1, 2, 3, 4].map((g) => ({ generationId: g, prompt: g <= 2 ? 'linked prompt' : 'plain prompt', sha256: sha(String(g)) }));
// Each generation's best match in the whole library.
const MATCHES = [
  { generationId: 1, hits: [{ referenceId: 1, rank: 0, score: 0.8 }] },
  { generationId: 2, hits: [{ referenceId: 2, rank: 0, score: 0.8 }] },
  { generationId: 3, hits: [{ referenceId: 2, rank: 0, score: 1 }] },
  { generationId: 4, hits: [{ referenceId: 2, rank: 0, score: 0.8 }] },
];

describe('per-prompt metrics under one threshold policy', () => {
  it('scores linked prompts against their own images only, and lists the others as unlinked with their evidence', () => {
    const p = setup();
    p.db.prepare("INSERT INTO jobs (id, kind, params_json, status, created_at) VALUES ('m', 'match', '{}', 'succeeded', ?)").run(new Date().toISOString());
    p.saveMatchResults('m', 'desc', { newVectors: VECTORS, matches: MATCHES, clusters: [] });
    const { linked, unlinked } = perPromptMetrics(p, 'desc', QUERIES, MATCHES, 0.75);
    expect(linked).toHaveLength(1);
    const l = linked[0];
    expect(l).toMatchObject({ prompt: 'linked prompt', generations: 2, linkedReferences: 1 });
    // Against own.png only: 0.8 and 0.6 (float16 storage), even though generation 2 matches other.png at 0.8.
    expect(l.top1).toBeCloseTo(0.8, 2);
    expect(l.top3).toBeCloseTo(0.7, 2);
    expect(l.fractionAbove).toBe(1); // MemBench: both exceed 0.5
    expect(l.fractionCopies).toBe(0.5); // the app's flag: one reaches 0.75
    // No MemBench metric for the prompt without links: never a fallback to its best match.
    expect(unlinked).toEqual([{ prompt: 'plain prompt', generations: 2, reason: 'no linked reference images', bestScore: 1, copies: 2 }]);
    expect(unlinked[0]).not.toHaveProperty('top1');
    p.close();
  });
});

describe('the gallery threshold', () => {
  it("is the latest match job's (the descriptor's calibrated one), not a constant; null before any", () => {
    const p = setup();
    const q = { sort: 'newest' as const, clusteredOnly: false, offset: 0, limit: 10 };
    expect(listGallery(p, q).threshold).toBeNull();
    const job = p.db.prepare("INSERT INTO jobs (id, kind, params_json, status, result_json, created_at, finished_at) VALUES (?, 'match', '{}', ?, ?, ?, ?)");
    job.run('m1', 'succeeded', JSON.stringify({ threshold: 0.8, references: 2 }), '2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z');
    job.run('m2', 'succeeded', JSON.stringify({ threshold: 0.8469, references: 2 }), '2026-01-01T00:00:02Z', '2026-01-01T00:00:03Z');
    // Later jobs that matched no references (clusters only) or failed do not set it.
    job.run('m3', 'succeeded', JSON.stringify({ threshold: 0.5, references: 0 }), '2026-01-01T00:00:04Z', '2026-01-01T00:00:05Z');
    job.run('m4', 'failed', null, '2026-01-01T00:00:06Z', '2026-01-01T00:00:07Z');
    expect(galleryThreshold(p.db)).toBe(0.8469);
    expect(listGallery(p, q).threshold).toBe(0.8469);
    p.close();
  });
});
