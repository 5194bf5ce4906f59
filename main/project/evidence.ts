/**
 * Each generation's copy-detection evidence in one indexed row (schema version 7), so the gallery can
 * sort and filter 50k generations without aggregating matches per query. Kept apart from gallery.ts so
 * the migration that fills it does not import the project class.
 */
import type Database from 'better-sqlite3';

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

