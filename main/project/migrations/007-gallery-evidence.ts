/** Version 7: each generation's latest match and cluster evidence in one indexed row, so the gallery
 * pages through 50k generations by joining it instead of aggregating matches per query. */
import type { Migration } from './types.js';
import { recordEvidence } from '../evidence.js';

export const migration7: Migration = {
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
