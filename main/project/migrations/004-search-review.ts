/** Version 4: per-chain search traces (the live view) and candidates with their verification and the
 * analyst's decision. */
import type { Migration } from './types.js';

export const migration4: Migration = {
  version: 4,
  description: 'trigger-prompt search: per-chain traces, candidates with verification and analyst decisions',
  sql: `
    CREATE TABLE search_trace (
      run_id INTEGER NOT NULL REFERENCES search_runs(id) ON DELETE CASCADE,
      chain INTEGER NOT NULL,
      iteration INTEGER NOT NULL,
      prompt TEXT NOT NULL,              -- the state the chain moved to
      energy REAL NOT NULL,
      best_energy REAL NOT NULL,
      PRIMARY KEY (run_id, chain, iteration)
    ) WITHOUT ROWID;
    CREATE TABLE search_candidates (
      run_id INTEGER NOT NULL REFERENCES search_runs(id) ON DELETE CASCADE,
      prompt TEXT NOT NULL,
      energy REAL,                       -- its highest D in the run (null: a prompt the analyst added)
      verify_job_id TEXT REFERENCES jobs(id) ON DELETE SET NULL,   -- the generations of its verification
      evidence_json TEXT,                -- clusters and best matches of those generations
      decision TEXT NOT NULL DEFAULT 'pending' CHECK (decision IN ('pending','confirmed','rejected')),
      note TEXT NOT NULL DEFAULT '',
      decided_at TEXT,
      PRIMARY KEY (run_id, prompt)
    ) WITHOUT ROWID;
  `,
};
