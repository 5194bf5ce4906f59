/**
 * Each generation's copy-detection evidence in one indexed row, so the gallery can sort and filter 50k
 * generations without aggregating matches per query. Kept apart from gallery.ts so the schema (which
 * needs the migration) does not import the project class.
 */
import type Database from 'better-sqlite3';
import type { Migration } from './migrations.js';

/**
 * Version 7: each generation's evidence in one indexed row, written when a match job ends (the latest job
 * wins): the best reference similarity and its job, the DBSCAN label and the size of that cluster. The
 * gallery pages through 50k generations by joining this row instead of aggregating matches per query.
 */
export const GALLERY_EVIDENCE_MIGRATION: Migration = {
  version: 7,
  description: "gallery: each generation's latest match and cluster evidence in one indexed row",
  sql: `
    CREATE TABLE generation_evidence (
      generation_id INTEGER PRIMARY KEY REFERENCES generations(id) ON DELETE CASCADE,
      match_job_id TEXT REFERENCES jobs(id) ON DELETE SET NULL,
      best_score REAL,                   -- rank-1 similarity in the latest job that matched references
      cluster_job_id TEXT REFERENCES jobs(id) ON DELETE SET NULL,
      cluster_label INTEGER,             -- -1 = noise
      cluster_size INTEGER
    );
    CREATE INDEX generation_evidence_score ON generation_evidence(best_score);
    CREATE INDEX clusters_label ON clusters(job_id, prompt_text, label);
    CREATE INDEX matches_job_generation ON matches(job_id, generation_id, rank);
  `,
  // Projects that already hold match jobs get their evidence in job order, so the latest job wins.
  after: (db) => {
    const jobs = db.prepare("SELECT id FROM jobs WHERE id IN (SELECT job_id FROM clusters UNION SELECT job_id FROM matches) ORDER BY created_at").all() as { id: string }[];
    for (const j of jobs) recordEvidence(db, j.id);
  },
};

/** Writes the evidence of one finished match job over that of earlier jobs. */
export function recordEvidence(db: Database.Database, jobId: string): void {
  db.prepare(
    `INSERT INTO generation_evidence (generation_id, match_job_id, best_score)
       SELECT generation_id, job_id, MAX(score) FROM matches WHERE job_id = ? GROUP BY generation_id
     ON CONFLICT (generation_id) DO UPDATE SET match_job_id = excluded.match_job_id, best_score = excluded.best_score`,
  ).run(jobId);
  db.prepare(
    `INSERT INTO generation_evidence (generation_id, cluster_job_id, cluster_label, cluster_size)
       SELECT c.generation_id, c.job_id, c.label, s.size FROM clusters c
       JOIN (SELECT prompt_text, label, COUNT(*) AS size FROM clusters WHERE job_id = ? GROUP BY prompt_text, label) s
         ON s.prompt_text = c.prompt_text AND s.label = c.label
       WHERE c.job_id = ?
     ON CONFLICT (generation_id) DO UPDATE SET cluster_job_id = excluded.cluster_job_id, cluster_label = excluded.cluster_label, cluster_size = excluded.cluster_size`,
  ).run(jobId, jobId);
}

