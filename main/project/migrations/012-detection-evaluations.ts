/**
 * Version 12: labelled detection evaluations. One row per evaluation of the detection score on a positive
 * (memorized) and a negative prompt set: where each set's scores came from (job and position in it, the
 * prompt set when there is one), the ROC with its AUC and TPR at 1% FPR, and the threshold chosen on it
 * with the rule that chose it. The report lists these instead of guessing labels from job order.
 */
import type { Migration } from './types.js';

export const migration12: Migration = {
  version: 12,
  description: 'labelled detection evaluations: sets, jobs, ROC, AUC, TPR at 1% FPR and the chosen threshold',
  sql: `
    CREATE TABLE detection_evaluations (
      id INTEGER PRIMARY KEY,
      created_at TEXT NOT NULL,
      positive_job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
      negative_job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
      positive_set_id INTEGER REFERENCES prompt_sets(id) ON DELETE SET NULL,
      negative_set_id INTEGER REFERENCES prompt_sets(id) ON DELETE SET NULL,
      positive_json TEXT NOT NULL,       -- { name, jobId, offset, count, setId }: the names survive a deleted set
      negative_json TEXT NOT NULL,
      settings_json TEXT NOT NULL,       -- the detect jobs' model, noises, steps, seed, noise mode, prediction type
      positives INTEGER NOT NULL,
      negatives INTEGER NOT NULL,
      auc REAL NOT NULL,
      tpr_at_1_fpr REAL NOT NULL,
      roc_json TEXT NOT NULL,            -- { fpr, tpr, thresholds } (the first threshold, +infinity, as null)
      scores_json TEXT NOT NULL,         -- { positives, negatives }: the scores the ROC was computed from
      threshold REAL NOT NULL,
      threshold_rule TEXT NOT NULL CHECK (threshold_rule IN ('fpr', 'youden', 'user')),
      threshold_fpr REAL NOT NULL,
      threshold_tpr REAL NOT NULL
    );
    CREATE INDEX detection_evaluations_positive_job ON detection_evaluations(positive_job_id);
    CREATE INDEX detection_evaluations_negative_job ON detection_evaluations(negative_job_id);
  `,
};
